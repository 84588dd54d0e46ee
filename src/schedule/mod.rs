//! Scheduling of the derivation DAG over builders. Lands with the plan/schedule issue.
