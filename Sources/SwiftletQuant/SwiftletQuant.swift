// SwiftletQuant — filled in by its issue.
import SwiftletTensor
