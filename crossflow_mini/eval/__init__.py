"""Referees and metrics: the ShapesWorld judge, mini-GenEval, Inception FID, the Fashion-MNIST classifier, and each
task's measures."""
