// Clients of this module see the base types (errors, GGMLType, TokenID) without importing SwiftletCore.
@_exported import SwiftletCore
