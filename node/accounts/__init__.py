"""Accounts of the editors' workspace (issue 14): users and their roles, passwords
(argon2id), one-time set-password links, browser sessions, login throttling and
drafts. Beside node/groups in the layers (docs/ARCHITECTURE.md §1): the web front
end (node/web/admin) and the CLI (node/cli/users.py) call these functions."""
