"""Predictive CLV and churn: BG/NBD, Gamma-Gamma and a churn classifier over the purchase history."""
