"""Lattice QCD: ILDG/LIME I/O, quenched SU(3) generation, observables, Wilson-clover
propagators and meson correlators, QCDml-style metadata and HDF5/Croissant export."""
