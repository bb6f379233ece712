// The public face of Swiftlet: re-exports every module so `import Swiftlet` is all an app needs.
@_exported import SwiftletTensor
@_exported import SwiftletQuant
@_exported import SwiftletFormats
@_exported import SwiftletTokenizers
@_exported import SwiftletModels
