"""All-position training for RecBole's causal sequential models (``train_mode: all_positions``).

RecBole trains SASRec and GRU4Rec on every prefix of a user's history as a separate
sample (a user with n training items costs n - 1 forward passes of the padded
sequence). In ``all_positions`` mode one forward pass of the user's training
sequence predicts every next item at once, with a full softmax (CE), sampled
negatives (BCE, the original SASRec and RecJPQ regime) or gBCE (gSASRec).
Validation and test stay RecBole's.

- :mod:`.settings`: the config keys and the checks run while the Config is built;
- :mod:`.sequences`: training sequences rebuilt from RecBole's training split, windows, batches, negatives;
- :mod:`.losses`: the backbone's output at every position and the three losses;
- :mod:`.trainer`: the trainer mixin present for every sequential model (a no-op in ``prefix`` mode).
"""
