"""The note field of the findings dock: what the person types there is theirs until it is saved.

When the list is read again (another writer changed the project, the GUI reloads within a
second or two), the field takes the stored note only where the person has not typed: a note
half-way typed is neither overwritten nor saved by the reload. :attr:`NoteField.base` is the
stored note the field was filled from, what a save compares with to tell whether another
writer changed the note meanwhile.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLineEdit, QWidget


class NoteField(QLineEdit):
    """A one-line note editor that knows the stored note it was filled from."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.base = ""  # the stored note the field shows, or was filled from before typing
        self.setPlaceholderText("Note on the selected finding (Enter saves)")

    def typed(self) -> str:
        return self.text().strip()

    def is_edited(self) -> bool:
        """Whether the person typed something that is not stored (yet)."""
        return self.typed() != self.base

    def show_note(self, note: str, same_finding: bool = False) -> None:
        """Show the stored ``note``; for the finding already shown, only if nothing typed
        differs from it (the typing, and where the cursor is, stay as they are)."""
        if same_finding and self.is_edited() and self.typed() != note:
            return
        self.base = note
        if self.text() != note:
            self.setText(note)
