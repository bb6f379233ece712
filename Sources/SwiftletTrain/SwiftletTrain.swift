// SwiftletTrain — filled in by its issue.
