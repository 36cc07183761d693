"""tfcro's models: the TFRS two-tower retrieval model and its config."""

from tfcro.models.two_tower import TwoTowerConfig, TwoTowerModel, prepare_loss

__all__ = ["TwoTowerConfig", "TwoTowerModel", "prepare_loss"]
