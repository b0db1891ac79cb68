"""Event generation: Pythia 8 configurations, particle guns, pileup and beam spot."""
