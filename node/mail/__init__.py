"""The bulletin by e-mail (issue 26; docs/ARCHITECTURE.md §1, "Mail"): per-language
lists of a group with double opt-in, mails composed and DKIM-signed by the node,
a mail queue (the twin of the inbox queue), SMTP sending, bounces."""
