// SwiftletModels — filled in by its issue.
