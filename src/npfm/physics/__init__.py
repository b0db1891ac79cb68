"""Event generation: Pythia 8 configurations, particle guns, pileup and beam spot."""

from npfm.physics.generate import CONFIGS, config_options, generate, list_configs
from npfm.physics.record import GeneratedEvent

__all__ = ["CONFIGS", "GeneratedEvent", "config_options", "generate", "list_configs"]
