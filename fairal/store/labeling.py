"""Labels: submit, edit and undo with their history, skips, answer counts and quiz (gold) answers."""

from __future__ import annotations

import numbers
from typing import cast

from fairal.errors import AccessDenied, BudgetUsedUp, NotFoundError, StoreError
from fairal.store._db import _int, _now
from fairal.store.projects import ProjectsArea, _check_role

LABELABLE_ROLES = ("pool", "validation")


class LabelingArea(ProjectsArea):
    """The annotators' labels and everything derived from them."""

    def submit_answer(self, project_id: int, item_id: int, annotator_id: int, value: int, *,
                      overlap: int, budget: int) -> dict:
        """An annotator's answer as the labeling loop commits it, checked and stored in one transaction.

        Checked under the write lock, so nothing can change in between: the annotator may label
        this project (an admin, or a member: :class:`~fairal.errors.AccessDenied` otherwise, also
        for an archived project), and a first answer to a pool item fits in the ``budget``. A quiz
        (gold) item takes a quiz answer (:meth:`record_gold_answer`'s ``{value, gold}``, plus
        ``quiz: True``); any other item a label (:meth:`submit_label` with ``max_answers=overlap``).
        """
        with self._write():
            self._require_labeling_access(project_id, annotator_id)
            if self._value("SELECT 1 FROM gold WHERE project_id = ? AND item_id = ?", [project_id, item_id]):
                return {**self.record_gold_answer(project_id, item_id, annotator_id, value), "quiz": True}
            if (not self.answer_count(project_id, item_id)
                    and self.label_count(project_id, role="pool") >= budget):
                raise BudgetUsedUp(f"the budget of {budget} labels is used up")
            return self.submit_label(project_id, item_id, annotator_id, value, max_answers=overlap)

    def _require_labeling_access(self, project_id: int, annotator_id: int) -> None:
        """The account exists and may label the project: an admin, or a member of an active project."""
        row = self._row(
            "SELECT a.name, a.role, p.name AS project, p.archived_at, "
            "EXISTS (SELECT 1 FROM memberships AS m WHERE m.project_id = p.id AND m.annotator_id = a.id) "
            "AS member FROM annotators AS a, projects AS p WHERE a.id = ? AND p.id = ?",
            [annotator_id, project_id])
        if row is None:
            self._require_project(project_id)
            raise AccessDenied("this account no longer exists; sign in again")
        if row["role"] != "admin" and not row["member"]:
            raise AccessDenied(f"{row['name']} is not assigned to project {row['project']!r}")
        if row["archived_at"]:
            raise AccessDenied(f"project {row['project']!r} is archived; an admin can restore it on the Setup page")

    def submit_label(
        self, project_id: int, item_id: int, annotator_id: int, value: int, *,
        max_answers: int | None = None,
    ) -> dict:
        """Record this annotator's label for an item, or change it; return the label row.

        Only 'pool' and 'validation' items take labels, and only the project's
        label values. Re-submitting the current value changes nothing. With
        ``max_answers`` (the project's overlap k), a first answer to an item
        that already has k answers from others is refused. The annotator's
        lease on the item ends in the same transaction.
        """
        with self._write():
            value = self._check_label(project_id, item_id, annotator_id, value)
            key = {"p": project_id, "i": item_id, "a": annotator_id}
            current = self._current_label(key)
            self._db.execute(
                "DELETE FROM leases WHERE project_id = :p AND item_id = :i AND annotator_id = :a", key)
            if current is not None and current["value"] == value:
                return current
            if current is None and max_answers is not None:
                others = self._value(
                    "SELECT COUNT(*) FROM labels WHERE project_id = :p AND item_id = :i", key)
                if others >= max_answers:
                    raise StoreError(f"item {item_id} already has {others} answers "
                                     f"(the project's overlap is {max_answers})")
            now = _now()
            seq = self._history(
                key,
                "edit" if current else "submit",
                None if current is None else current["value"],
                value,
                now,
            )
            self._db.execute(
                """
                INSERT INTO labels
                    (project_id, item_id, annotator_id, value, created_at, updated_at, seq)
                VALUES (:p, :i, :a, :value, :now, :now, :seq)
                ON CONFLICT (project_id, item_id, annotator_id)
                DO UPDATE SET value = :value, updated_at = :now, seq = :seq
                """,
                {**key, "value": value, "now": now, "seq": seq},
            )
            return cast(dict, self._current_label(key))

    def _check_label(self, project_id: int, item_id: int, annotator_id: int, value: int) -> int:
        """``value`` as an int, when it is one of the project's label values for a labelable item."""
        allowed = self.project(project_id)["label_values"]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            int(value) not in allowed
        ):
            raise ValueError(f"label value must be one of {allowed}, got {value!r}")
        role = self._require_item(project_id, item_id)
        if role not in LABELABLE_ROLES:
            raise ValueError(
                f"item {item_id} has role {role!r}; only 'pool' and 'validation' "
                "items can be labeled"
            )
        self._require_annotator(annotator_id)
        return int(value)

    def undo_last_label(self, project_id: int, annotator_id: int) -> dict | None:
        """Revert this annotator's latest label action not yet undone.

        Undoing a first submit deletes the label; undoing an edit restores the
        old value. Returns ``{"item_id", "value"}`` (``value`` is None when the
        label is gone), or None when there is nothing to undo.
        """
        with self._write():
            self._require_project(project_id)
            self._require_annotator(annotator_id)
            last = self._row(
                """
                SELECT * FROM label_history AS h
                WHERE project_id = ? AND annotator_id = ?
                  AND action IN ('submit', 'edit')
                  AND NOT EXISTS (SELECT 1 FROM label_history AS u WHERE u.undoes = h.id)
                ORDER BY id DESC LIMIT 1
                """,
                [project_id, annotator_id],
            )
            if last is None:
                return None
            key = {"p": project_id, "i": last["item_id"], "a": annotator_id}
            current = self._current_label(key)
            if current is None or current["value"] != last["new_value"]:
                raise StoreError(
                    f"label history of item {last['item_id']} is out of step with its label"
                )
            restored = last["old_value"]
            now = _now()
            seq = self._history(key, "undo", current["value"], restored, now, undoes=last["id"])
            if restored is None:
                self._db.execute(
                    "DELETE FROM labels WHERE project_id = :p AND item_id = :i "
                    "AND annotator_id = :a",
                    key,
                )
            else:
                self._db.execute(
                    "UPDATE labels SET value = :value, updated_at = :now, seq = :seq "
                    "WHERE project_id = :p AND item_id = :i AND annotator_id = :a",
                    {**key, "value": restored, "now": now, "seq": seq},
                )
            return {"item_id": last["item_id"], "value": restored}

    def _current_label(self, key: dict) -> dict | None:
        return self._row(
            "SELECT * FROM labels WHERE project_id = :p AND item_id = :i AND annotator_id = :a",
            key,
        )

    def _history(
        self,
        key: dict,
        action: str,
        old_value: int | None,
        new_value: int | None,
        at: str,
        *,
        undoes: int | None = None,
    ) -> int:
        cursor = self._db.execute(
            """
            INSERT INTO label_history
                (project_id, item_id, annotator_id, action, old_value, new_value, undoes, at)
            VALUES (:p, :i, :a, :action, :old, :new, :undoes, :at)
            """,
            {**key, "action": action, "old": old_value, "new": new_value, "undoes": undoes,
             "at": at},
        )
        return cast(int, cursor.lastrowid)

    def record_skip(self, project_id: int, item_id: int, annotator_id: int) -> None:
        """Put the item at the back of this annotator's queue and end their lease on it."""
        with self._write():
            self._require_item(project_id, item_id)
            self._require_annotator(annotator_id)
            self._db.execute("DELETE FROM leases WHERE project_id = ? AND item_id = ? AND annotator_id = ?",
                             [project_id, item_id, annotator_id])
            self._db.execute(
                "INSERT INTO skips (project_id, item_id, annotator_id, at) VALUES (?, ?, ?, ?)",
                [project_id, item_id, annotator_id, _now()],
            )

    # --------------------------------------------------------------- reads

    def labels(self, project_id: int) -> list[dict]:
        """Current labels, oldest change first."""
        self._require_project(project_id)
        return self._rows("SELECT * FROM labels WHERE project_id = ? ORDER BY seq", [project_id])

    def label_history(self, project_id: int, *, item_id: int | None = None) -> list[dict]:
        self._require_project(project_id)
        sql = "SELECT * FROM label_history WHERE project_id = ?"
        params: list = [project_id]
        if item_id is not None:
            sql += " AND item_id = ?"
            params.append(item_id)
        return self._rows(sql + " ORDER BY id", params)

    def label_count(
        self, project_id: int, *, annotator_id: int | None = None, role: str | None = None
    ) -> int:
        """Number of distinct items labeled (by ``annotator_id``; of ``role``)."""
        self._require_project(project_id)
        sql = (
            "SELECT COUNT(DISTINCT l.item_id) FROM labels AS l JOIN items AS i "
            "ON i.project_id = l.project_id AND i.item_id = l.item_id WHERE l.project_id = ?"
        )
        params: list = [project_id]
        if annotator_id is not None:
            sql += " AND l.annotator_id = ?"
            params.append(annotator_id)
        if role is not None:
            sql += " AND i.role = ?"
            params.append(_check_role(role))
        return self._value(sql, params)

    def labels_by_annotator(self) -> dict[int, int]:
        """``{annotator_id: number of current labels}`` over the projects that are not archived."""
        return {int(a): int(n) for a, n in self._db.execute(
            "SELECT l.annotator_id, COUNT(*) FROM labels AS l JOIN projects AS p ON p.id = l.project_id "
            "WHERE p.archived_at IS NULL GROUP BY l.annotator_id").fetchall()}

    def labeled_items(self, project_id: int, *, role: str | None = None) -> dict[int, int]:
        """``{item_id: value}``: the majority label of each item, ties going
        to the value given most recently."""
        self._require_project(project_id)
        sql = (
            "SELECT l.item_id, l.value, l.seq FROM labels AS l JOIN items AS i "
            "ON i.project_id = l.project_id AND i.item_id = l.item_id WHERE l.project_id = ?"
        )
        params: list = [project_id]
        if role is not None:
            sql += " AND i.role = ?"
            params.append(_check_role(role))
        votes: dict[int, dict[int, tuple[int, int]]] = {}
        for item_id, value, seq in self._tuples(sql, params):
            count, last = votes.setdefault(item_id, {}).get(value, (0, 0))
            votes[item_id][value] = (count + 1, max(last, seq))
        return {
            item_id: max(tally, key=tally.__getitem__)
            for item_id, tally in sorted(votes.items())
        }

    def answer_count(self, project_id: int, item_id: int) -> int:
        return self._value("SELECT COUNT(*) FROM labels WHERE project_id = ? AND item_id = ?", [project_id, item_id])

    def answer_counts(self, project_id: int) -> dict[int, int]:
        """``{item_id: number of annotators who answered it}``."""
        return dict(self._tuples(
            "SELECT item_id, COUNT(*) FROM labels WHERE project_id = ? GROUP BY item_id", [project_id]))

    def answers(self, project_id: int) -> list[dict]:
        """Every current answer in long form: ``{item_id, annotator_id, worker_id, answer, seq}``
        (``worker_id``: the annotator's name; the crowd's words, :data:`fairal.crowd.ANSWER_COLUMNS`)."""
        self._require_project(project_id)
        return self._rows(
            "SELECT l.item_id, l.annotator_id, a.name AS worker_id, l.value AS answer, l.seq FROM labels AS l "
            "JOIN annotators AS a ON a.id = l.annotator_id WHERE l.project_id = ? ORDER BY l.seq",
            [project_id])

    def last_label_at(self, project_id: int) -> str | None:
        """When the project's labels last changed (ISO time), or None."""
        return self._value("SELECT MAX(at) FROM label_history WHERE project_id = ?", [project_id])

    def label_seq(self, project_id: int) -> int:
        """A number that grows with every label change of the project (0 before the first)."""
        return self._value("SELECT COALESCE(MAX(id), 0) FROM label_history WHERE project_id = ?",
                           [project_id])

    # ---------------------------------------------------------- quiz answers

    def next_gold_item(self, project_id: int, annotator_id: int, *, salt: int = 0) -> int | None:
        """A gold item this annotator has not answered (a fixed shuffled order per annotator), or None."""
        row = self._value(
            """
            SELECT g.item_id FROM gold AS g
            WHERE g.project_id = :p AND NOT EXISTS (
                SELECT 1 FROM gold_answers AS x
                WHERE x.project_id = :p AND x.item_id = g.item_id AND x.annotator_id = :a)
            ORDER BY (g.item_id * 2654435761 + :a * 40503 + :salt) % 1000003 LIMIT 1
            """, {"p": project_id, "a": annotator_id, "salt": int(salt)})
        return row

    def record_gold_answer(self, project_id: int, item_id: int, annotator_id: int, value: int) -> dict:
        """Store a quiz answer (it never becomes a training label); returns ``{value, gold}``."""
        with self._write():
            gold = self._value("SELECT value FROM gold WHERE project_id = ? AND item_id = ?", [project_id, item_id])
            if gold is None:
                raise NotFoundError(f"item {item_id} is not a gold item of project {project_id}")
            self._require_annotator(annotator_id)
            self._db.execute(
                "INSERT INTO gold_answers (project_id, item_id, annotator_id, value, at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (project_id, item_id, annotator_id) DO UPDATE SET value = excluded.value, "
                "at = excluded.at", [project_id, item_id, annotator_id, _int(value, "value"), _now()])
            return {"value": int(value), "gold": int(gold)}

    def gold_answers(self, project_id: int) -> list[dict]:
        """``{item_id, annotator_id, worker_id, answer, gold}`` for every quiz answer."""
        return self._rows(
            "SELECT x.item_id, x.annotator_id, a.name AS worker_id, x.value AS answer, g.value AS gold "
            "FROM gold_answers AS x "
            "JOIN gold AS g ON g.project_id = x.project_id AND g.item_id = x.item_id "
            "JOIN annotators AS a ON a.id = x.annotator_id WHERE x.project_id = ? ORDER BY x.id", [project_id])
