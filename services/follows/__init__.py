"""follows: one-way follow edges, the follow setting, post alerts, counts."""
