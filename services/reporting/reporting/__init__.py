"""The reporting service: outcome reports for funders and boards, built from the platform's events only."""
