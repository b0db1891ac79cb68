"""Detector geometries (YAML data files) and a vectorised fast simulation.

``simulate(event, "sphenix", rng)`` turns a ``npfm.physics.record.GeneratedEvent`` into
an event-model mapping for ``npfm.events.build.events_to_table``.
"""

from npfm.detectors.geometry import Geometry, list_geometries, load_geometry
from npfm.detectors.geometry_reader import GeometryError
from npfm.detectors.simulation import SimOptions, simulate, simulate_events

__all__ = ["Geometry", "GeometryError", "SimOptions", "list_geometries", "load_geometry",
           "simulate", "simulate_events"]
