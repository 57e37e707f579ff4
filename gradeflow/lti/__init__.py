"""LTI 1.3 Advantage platform: registered tools, the token endpoint, grades (AGS 2.0), rosters (NRPS 2.0)."""
