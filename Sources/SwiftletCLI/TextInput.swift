import Foundation
import Swiftlet

/// Largest text file a command reads (a prompt, a perplexity corpus): 1 GiB.
let maxTextFileBytes = 1 << 30

/// The text of a file named on the command line: a regular file (a FIFO or device is refused
/// without blocking) of at most ``maxTextFileBytes``, valid UTF-8. Errors name the path.
func readTextFile(_ path: String) throws -> String {
    try MappedFile.readText(URL(fileURLWithPath: path), limit: maxTextFileBytes)
}
