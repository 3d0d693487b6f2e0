"""Campaigns for imprisoned workers (issue 16): dossier, detention, consent, render,
timeline, operations, coowners; docs/ARCHITECTURE.md §1 "Campaigns"."""
