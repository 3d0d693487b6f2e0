"""The Mastodon client API for group accounts (issue 29): an editor logs into a
group's account from a Mastodon app (OAuth 2), and what they post becomes the
group's news items and replies (docs/ARCHITECTURE.md §1, "node/clientapi")."""
