// SwiftletTokenizers — filled in by its issue.
