"""Trainers: mixins that sit on top of RecBole's trainer for a model's type."""
