//! Strategy planning per component (cross or target-system) and its cost model. Lands with the plan/schedule issue.
