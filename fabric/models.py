# Filled by later issues; see ../shared/DESIGN.md for what this app owns.
