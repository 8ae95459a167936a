"""Which photo is on screen, and how the view and the docks follow it.

:class:`PhotoNavigation` is the half of :class:`app.gui._main.Inspector` that shows a photo
(``show_key``), a region of one (``go_to_region``: a finding, a blade-map marker) and the
Review dock's proposals (``show_proposal``); the Inspector provides the viewer, the session,
the layers and the docks. A proposal's photo is drawn first and the docks that only follow
it (list, corrections, findings, blade map) catch up after the paint, while the next
proposals' photos are read ahead (:class:`app.gui._photo_cache.PhotoCache`).
"""

from __future__ import annotations

from app.gui._responsive import after_paint


class PhotoNavigation:
    """Showing photos and regions; mixed into the Inspector."""

    def show_key(self, key: str, soon: bool = False) -> None:
        """Show photo ``key``; ``soon``: the docks that follow the photo (list, corrections,
        findings, blade map) catch up once the canvas has drawn it (the Review dock's next
        proposal)."""
        if self.project is None:
            return
        if key == self.session.key and getattr(self, "_opening", False):
            return  # projects.select below re-selects it: the photo is being shown already
        self._opening = True
        try:
            self._show_key(key, soon)
        finally:
            self._opening = False

    def _show_key(self, key: str, soon: bool = False) -> None:
        try:
            self.session.open(key)
        except Exception as e:
            self._error(f"Cannot show {key}: {e}")
            return
        self.update_title()
        if soon:
            after_paint(self.viewer, lambda: self._follow(key))
        else:
            self._follow(key)

    def _follow(self, key: str) -> None:
        """The docks that follow the photo on screen, if ``key`` still is."""
        if self.project is None or key != self.session.key or getattr(self, "closed", False):
            return
        was, self._opening = getattr(self, "_opening", False), True
        try:
            self.projects.select(key)
        finally:
            self._opening = was
        self._refresh_review()
        self.annotate.show_reviewed(self.project.record(key).reviewed)
        self.batch.sync()
        self.findings.show_photo(key)
        self.blade_map.show_photo(key)

    def _on_decided(self, key: str) -> None:
        """A review decision changed ``key``'s boxes: show them if it is on screen."""
        if key == self.session.key:
            self.session.reload_boxes()
        self.projects.update_status(key)

    def go_to_region(self, key: str, bbox: tuple[int, int, int, int], soon: bool = False
                     ) -> None:
        """Show photo ``key`` (if another is on screen) zoomed to a finding's box (``soon``:
        as :meth:`show_key`)."""
        if key != self.session.key:
            rec = self.project.images.get(key) if self.project is not None else None
            if rec is not None and (rec.height, rec.width) == self.layers.size:
                self.layers.zoom_to(bbox)  # the camera first: the new photo is drawn once
            self.show_key(key, soon)
        if key == self.session.key:
            self.layers.zoom_to(bbox)

    def show_proposal(self, key: str, proposal) -> None:
        """The Review dock's proposal: its photo, zoomed to it, with the student's mask (shown
        when the first proposal is); the next proposals' photos are read ahead while the
        person looks at this one."""
        if not self._review_shown:
            self._review_shown = True
            self.layers.student.visible = True
        self.go_to_region(key, proposal.box, soon=True)
        if self.session.cache is not None:  # once this one is drawn: no CPU taken from it
            cache, upcoming = self.session.cache, self.proposals.upcoming()
            after_paint(self.viewer, lambda: cache.prefetch(upcoming))
