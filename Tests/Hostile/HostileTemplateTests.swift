import Foundation
import XCTest
import Swiftlet

/// Chat templates come inside model files, so they are as untrusted as the files: each of these
/// used to hang a render or allocate memory sized by a number in the template. Each must now end
/// in a `.limit` template error, quickly, under the default limits (or a short time limit where
/// the time limit is what stops it).
final class HostileTemplateTests: XCTestCase {
    private func assertLimit(_ source: String, limits: JinjaLimits = JinjaLimits(), within seconds: Double = 2,
                             file: StaticString = #filePath, line: UInt = #line) {
        let start = DispatchTime.now().uptimeNanoseconds
        XCTAssertThrowsError(try JinjaTemplate(source, limits: limits).render([:]), source, file: file, line: line) { error in
            guard case SwiftletError.template(.limit, _, _, _)? = error as? SwiftletError else {
                return XCTFail("\(source): \(error)", file: file, line: line)
            }
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertLessThan(elapsed, seconds, source, file: file, line: line)
    }

    /// Rebuilding a growing string or list in a loop cost quadratic time (16k iterations copying
    /// up to 16 MB each before the output bound stopped the string).
    func testRebuildingInALoopIsBounded() {
        assertLimit("{% set ns = namespace(s='') %}{% for i in range(200000) %}{% set ns.s = ns.s + 'x' * 1000 %}{% endfor %}")
        assertLimit("{% set ns = namespace(s='') %}{% for i in range(200000) %}{% set ns.s = ns.s ~ i ~ 'x' * 999 %}{% endfor %}")
        assertLimit("{% set ns = namespace(l=[]) %}{% for i in range(200000) %}{% set ns.l = ns.l + [i] %}{% endfor %}")
        assertLimit("{% set big = 'x' * 10000000 %}{% for i in range(200000) %}{% set y = big.replace('x', 'y') %}{% endfor %}")
    }

    /// Widths and counts from the template were allocated before any check. (A 1 MiB output
    /// bound keeps the strings these build small; the checks do not depend on its value.)
    func testSizesFromTheTemplateAreCheckedBeforeAllocating() {
        let small = JinjaLimits(maximumOutputBytes: 1 << 20)
        for source in [
            "{{ 'a' | indent(1000000000000) }}",
            "{{ ('a\\n' * 100000) | indent(100) }}",
            "{{ 'a' | center(1000000000000) }}",
            "{{ [1, [2]] | tojson(indent=1000000000000) }}",
            "{{ ([[[[1]]]] * 100000) | tojson(indent=1000) }}",
            "{{ ('x' * 10000) | replace('x', 'y' * 300) }}",
            "{{ ('x' * 100000).replace('x', 'y' * 1000) }}",
            "{{ '{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}'.format('x' * 100000) }}",
            "{{ ','.join(['x' * 100000] * 100) }}",
            "{{ (['x' * 100000] * 100) | join }}",
            "{{ ['x' * 100000] * 100 }}",
            "{{ (['x' * 100000] * 100) | string }}",
            "{{ 'a' ~ (['x' * 100000] * 100) }}",
        ] {
            assertLimit(source, limits: small)
        }
    }

    /// Work no other limit counts: a long scan in every iteration, and macros calling themselves
    /// twice (2^60 calls within the depth limit).
    func testTheTimeLimitStopsTheRest() {
        let short = JinjaLimits(maximumRenderSeconds: 0.3)
        assertLimit("{% set big = 'x' * 10000000 %}{% for i in range(200000) %}{% if 'y' in big %}{% endif %}{% endfor %}",
                    limits: short)
        assertLimit("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}", limits: short)
    }

    /// Printing, comparing and freeing a value recurse once per level of nesting, and a namespace
    /// is the one value a template can change: a namespace holding itself was printed without end
    /// (a fuzzer found `{% set state.tool_index = state %}` in a real template's body overflowing
    /// the stack), and a loop or a macro calling itself could nest a list thousands deep.
    func testValuesThatNestWithoutEndAreRefused() throws {
        assertLimit("{% set ns = namespace(a=1) %}{% set ns.b = ns %}{{ ns }}")
        assertLimit("{% set ns = namespace(a=1) %}{% set ns.b = [1, {'c': ns}] %}{{ ns }}")
        assertLimit("{% set a = namespace() %}{% set b = namespace(a=a) %}{% set a.b = b %}{{ a }}")
        assertLimit("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}")
        assertLimit("{% set ns = namespace(n=none) %}{% for i in range(100000) %}{% set ns.n = namespace(p=ns.n) %}{% endfor %}")
        assertLimit("{% macro f(x, n) %}{% if n > 0 %}{{ f([[[[[[[[[[x]]]]]]]]]], n - 1) }}{% endif %}{% endmacro %}{{ f(1, 99) }}")
        // Doubling shares its halves: 2^60 paths, stopped by the time limit while they are walked
        // and by the output bound when printed.
        assertLimit("{% set ns = namespace(x=[1]) %}{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}",
                    limits: JinjaLimits(maximumRenderSeconds: 0.5))
        assertLimit("{% set ns = namespace(x=[1]) %}{% for i in range(20) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns }}")
        // Nesting up to the bound is still a value like any other.
        let nested = try JinjaTemplate("""
            {%- set ns = namespace(x=[]) -%}{%- for i in range(500) -%}{%- set ns.x = [ns.x] -%}{%- endfor -%}
            {{- (ns.x | string | length) -}} {{ ns.x == ns.x }}
            """).render([:])
        XCTAssertEqual(nested, "1002True")
    }

    /// The bounds leave real templates alone: a long conversation renders through a template that
    /// accumulates it in a namespace string, as some real templates do.
    func testLongConversationsStillRender() throws {
        let template = try ChatTemplate(template: """
            {%- set ns = namespace(text='') -%}
            {%- for m in messages -%}{%- set ns.text = ns.text + m.role + ': ' + m.content | trim + '\\n' -%}{%- endfor -%}
            {{- ns.text | replace('\\n\\n', '\\n') -}}{{ messages | tojson(indent=2) | length }}
            """)
        let messages = (0..<200).map { ChatMessage(role: $0 % 2 == 0 ? "user" : "assistant",
                                                   content: String(repeating: "word ", count: 400)) }
        let text = try template.render(messages: messages, addGenerationPrompt: true)
        XCTAssertGreaterThan(text.utf8.count, 200 * 2000)
    }
}
