"""Classical track finder: Hough transform in (phi0, q/pT) for tracks from the beam line,
followed by a circle + helix refit that collects the track's hits in every layer.

In a solenoid field B a track from the beam line with initial direction phi0 and
k = q/pT reaches the hit at radius r and azimuth phi with phi = phi0 - asin(CURVATURE B k r / 2)
(R = pT / (CURVATURE B), the sign of a positive charge in +z field: clockwise). Each hit
votes along that curve; the highest cell gives a candidate, whose hits are refitted:

1. a circle through the beam point (linear least squares: x^2 + y^2 = 2 a x + 2 b y);
2. z against the arc length s = R psi (psi the turning angle, + 2 pi R per extra turn for
   loopers) with a (z0, cot theta) Hough and a straight-line fit;
3. all unassigned hits within ``xy_window`` of the circle and ``z_window`` of the line join.

A candidate with at least ``min_hits`` hits on ``min_layers`` layers becomes a track and
its hits leave the accumulator; otherwise its cell is vetoed. Noise hits rarely line up
and stay unassigned (-1). Secondaries from displaced vertices are not searched for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from npfm.tasks.baselines.events import CURVATURE, Event, HitFrame, global_layer, hit_frame

_TWO_PI = 2.0 * np.pi
_R_MAX_CM = 1.0e6  # radius used for (nearly) straight tracks


@dataclass
class _Circle:
    """Circle through the beam point: centre (cx, cy) cm, radius r (cm), sense +1 for
    clockwise motion (positive charge in a +z field)."""

    cx: float
    cy: float
    r: float
    sense: float

    @classmethod
    def from_hough(cls, phi0: float, k: float, field_t: float) -> _Circle:
        radius = min(1.0 / max(abs(k) * CURVATURE * field_t, 1e-12), _R_MAX_CM)
        sense = 1.0 if k >= 0 else -1.0
        centre_dir = phi0 - sense * np.pi / 2
        return cls(radius * np.cos(centre_dir), radius * np.sin(centre_dir), radius, sense)

    def refit(self, x: np.ndarray, y: np.ndarray) -> _Circle:
        """Least-squares circle through the origin and the points; keeps the sense."""
        design = np.stack([2 * x, 2 * y], axis=1)
        (cx, cy), *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
        radius = float(np.hypot(cx, cy))
        if not np.isfinite(radius) or radius > _R_MAX_CM:
            return self
        return _Circle(float(cx), float(cy), radius, self.sense)

    def distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (cm) of the points from the circle."""
        return np.abs(np.hypot(x - self.cx, y - self.cy) - self.r)

    def turning(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Turning angle psi in [0, 2 pi) from the beam point to each point's projection."""
        start = np.arctan2(-self.cy, -self.cx)
        here = np.arctan2(y - self.cy, x - self.cx)
        return np.mod(self.sense * (start - here), _TWO_PI)


@dataclass
class HoughTrackFinder:
    """Hough-transform track finder for tracks from the beam line (classical baseline).

    pt_min: lowest pT searched (GeV); phi_bin (rad) and k_bin (1/GeV): accumulator cells;
    xy_window, z_window: hit-to-helix distances accepted (cm), widened by
    ``window_per_k`` (cm GeV) times |q/pT| for multiple scattering; min_hits, min_layers:
    smallest accepted track; max_turns: turns of a looper followed in z; eta_max: largest
    |eta| searched; z0_window: largest |z0 - vertex z| (cm).
    """

    geometry: str = "sphenix"
    pt_min: float = 0.06
    phi_bin: float = 0.012
    k_bin: float = 0.15
    xy_window: float = 0.25
    z_window: float = 0.8
    window_per_k: float = 0.3
    min_hits: int = 5
    min_layers: int = 4
    max_turns: int = 3
    eta_max: float = 2.0
    z0_window: float = 10.0
    name: str = field(default="hough", init=False)

    def fit(self, events: Sequence[Event]) -> None:
        """Nothing to learn: the finder is fixed by its configuration."""

    def _votes(self, frame: HitFrame) -> tuple[np.ndarray, np.ndarray, int]:
        """Accumulator cell (k index * n_phi + phi index; -1 unreachable) of every hit for
        every k column, the k column centres (1/GeV) and n_phi."""
        n_k = max(int(np.ceil(2.0 / (self.pt_min * self.k_bin))), 1)
        k = (np.arange(n_k) + 0.5) * (2.0 / self.pt_min / n_k) - 1.0 / self.pt_min
        n_phi = int(np.ceil(_TWO_PI / self.phi_bin))
        a = 0.5 * CURVATURE * frame.field * np.outer(frame.r, k)
        ok = np.abs(a) < 1.0
        phi0 = frame.phi[:, None] + np.arcsin(np.clip(a, -1.0, 1.0))
        cell = np.floor(np.mod(phi0 + np.pi, _TWO_PI) / _TWO_PI * n_phi).astype(np.int64)
        cell = np.minimum(cell, n_phi - 1) + np.arange(n_k)[None, :] * n_phi
        return np.where(ok, cell, -1), k, n_phi

    def predict(self, event: Event) -> np.ndarray:
        """Track label per hit (0, 1, ...; -1 unassigned)."""
        frame = hit_frame(event)
        layer = global_layer(event, self.geometry)
        n = len(frame.r)
        labels = np.full(n, -1, np.int64)
        if n == 0:
            return labels
        cells, k, n_phi = self._votes(frame)
        n_cells = len(k) * n_phi
        vetoed = np.zeros(n_cells, bool)
        track = 0
        for _ in range(10 * n):
            active = labels < 0
            votes = cells[active].ravel()
            acc = np.bincount(votes[votes >= 0], minlength=n_cells).reshape(len(k), n_phi)
            smooth = acc + np.roll(acc, 1, axis=1) + np.roll(acc, -1, axis=1)
            smooth = smooth.ravel().astype(np.float64)
            smooth[vetoed] = -1.0
            best = int(np.argmax(smooth))
            if smooth[best] < self.min_hits:
                break
            jk, jphi = divmod(best, n_phi)
            near = np.isin(cells[:, jk], [best - 1, best, best + 1]) & active
            if jphi in (0, n_phi - 1):
                wrap = jk * n_phi + (n_phi - 1 if jphi == 0 else 0)
                near |= (cells[:, jk] == wrap) & active
            phi0 = (jphi + 0.5) / n_phi * _TWO_PI - np.pi
            members = self._follow(frame, layer, active, near, phi0, float(k[jk]))
            if members is None:
                vetoed[[best - 1, best, best + 1] if 0 < jphi < n_phi - 1 else best] = True
                continue
            labels[members] = track
            track += 1
        return labels

    def _follow(self, frame: HitFrame, layer: np.ndarray, active: np.ndarray,
                seed: np.ndarray, phi0: float, k: float) -> np.ndarray | None:
        """Refit the candidate seeded by the ``seed`` hits; its hit indices, or None."""
        circle = _Circle.from_hough(phi0, k, frame.field)
        members = np.flatnonzero(seed)
        line: tuple[float, float] | None = None
        window_xy = self.xy_window + self.window_per_k * abs(k)
        window_z = self.z_window + self.window_per_k * abs(k)
        for _ in range(3):
            if len(members) < 3:
                return None
            circle = circle.refit(frame.x[members], frame.y[members])
            arc = self._arcs(circle, frame, members)
            line = self._z_line(arc, frame.z[members], frame.vz) if line is None else \
                self._refit_line(arc, frame.z[members], line, window_z)
            if line is None:
                return None
            candidates = np.flatnonzero(active
                                        & (circle.distance(frame.x, frame.y) < window_xy))
            arc_c = self._arcs(circle, frame, candidates)
            dz = np.min(np.abs(frame.z[candidates, None] - line[0] - line[1] * arc_c), axis=1)
            members = candidates[dz < window_z]
        if len(members) < self.min_hits or len(np.unique(layer[members])) < self.min_layers:
            return None
        return members

    def _arcs(self, circle: _Circle, frame: HitFrame, idx: np.ndarray) -> np.ndarray:
        """Arc lengths (cm) of each hit for 0..max_turns-1 extra turns, shape (len, turns);
        a circle that leaves the tracker before turning back gets one column."""
        psi = circle.turning(frame.x[idx], frame.y[idx])
        loops = 2 * circle.r < float(np.max(frame.r, initial=0.0)) + 1.0
        turns = np.arange(self.max_turns if loops else 1) * _TWO_PI
        return circle.r * (psi[:, None] + turns[None, :])

    def _z_line(self, arc: np.ndarray, z: np.ndarray, vz: float) -> tuple[float, float] | None:
        """(z0, cot theta) of the densest straight line in (s, z), or None."""
        t_max = float(np.sinh(self.eta_max))
        t_grid = np.arange(-t_max, t_max, 0.01)
        z0_edges = np.arange(vz - self.z0_window, vz + self.z0_window + 0.5, 0.5)
        z0 = z[:, None, None] - t_grid[None, None, :] * arc[:, :, None]
        z0_bin = np.floor((z0 - z0_edges[0]) / 0.5).astype(np.int64)
        ok = (z0_bin >= 0) & (z0_bin < len(z0_edges) - 1)
        cell = z0_bin * len(t_grid) + np.arange(len(t_grid))[None, None, :]
        hit = np.broadcast_to(np.arange(len(z))[:, None, None], cell.shape)
        # one vote per hit and cell, whichever turn gives it
        pairs = np.unique(hit[ok] * (len(z0_edges) * len(t_grid)) + cell[ok])
        acc = np.bincount(pairs % (len(z0_edges) * len(t_grid)))
        if len(acc) == 0 or acc.max() < 3:
            return None
        b0, bt = divmod(int(np.argmax(acc)), len(t_grid))
        return float(z0_edges[b0] + 0.25), float(t_grid[bt])

    @staticmethod
    def _refit_line(arc: np.ndarray, z: np.ndarray, line: tuple[float, float],
                    window: float) -> tuple[float, float] | None:
        """Straight-line fit z = z0 + t s over the hits near ``line`` (best turn per hit)."""
        resid = np.abs(z[:, None] - line[0] - line[1] * arc)
        s = arc[np.arange(len(z)), np.argmin(resid, axis=1)]
        keep = resid.min(axis=1) < window
        if keep.sum() < 3:
            return None
        t, z0 = np.polyfit(s[keep], z[keep], 1)
        return float(z0), float(t)
