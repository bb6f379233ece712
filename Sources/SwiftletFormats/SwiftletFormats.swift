// SwiftletFormats — filled in by its issue.
