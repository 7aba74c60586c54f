"""Supervision: the inspection policy, the monthly plan and the policy simulation."""
