import Foundation
import XCTest
import SwiftletTokenizers
import SwiftletTensor
import SwiftletTestSupport

final class JinjaTests: XCTestCase {
    func render(_ source: String, _ context: [String: JinjaValue] = [:], limits: JinjaLimits = JinjaLimits()) throws -> String {
        try JinjaTemplate(source, limits: limits).render(context)
    }

    func assertTemplateError(_ kind: TemplateErrorKind, line: Int? = nil, column: Int? = nil,
                             _ body: @autoclosure () throws -> some Any, file: StaticString = #filePath, fileLine: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: fileLine) { error in
            guard case let SwiftletError.template(k, _, l, c) = error else { return XCTFail("\(error)", file: file, line: fileLine) }
            XCTAssertEqual(k, kind, "\(error)", file: file, line: fileLine)
            if let line { XCTAssertEqual(l, line, "\(error)", file: file, line: fileLine) }
            if let column { XCTAssertEqual(c, column, "\(error)", file: file, line: fileLine) }
        }
    }

    /// Expected outputs below were produced by Python's jinja2 3.1 with transformers' settings,
    /// except that tuples print as lists here (`[1, 2]` for Python's `(1, 2)`; see the README).
    func testWhitespaceControlAsTransformersSetsIt() throws {
        XCTAssertEqual(try render("a  \n  {% if true %}\n  x\n  {% endif %}\n  b"), "a  \n  x\n  b")
        XCTAssertEqual(try render("a \n {%- if true -%} \n x \n {%- endif %}\nb\n"), "axb")
        XCTAssertEqual(try render("{# comment #}\nx{{ 1 }}\n{{- 2 }}  {{+ 3 }}"), "x12  3")
        XCTAssertEqual(try render("  {%+ if true %}y{% endif %}"), "  y")
        XCTAssertEqual(try render("line\r\nnext\n\n"), "line\nnext\n")
    }

    func testLoopsScopesAndNamespaces() throws {
        XCTAssertEqual(try render("{% for x in items %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
                                  ["items": ["a", "b", "c"]]), "1a,2b,3c")
        XCTAssertEqual(try render("{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}"), "0001020")
        XCTAssertEqual(try render("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"), "6")
        XCTAssertEqual(try render("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty")
        XCTAssertEqual(try render("{% for x in range(10) if x is odd %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "135")
        XCTAssertEqual(try render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", ["d": ["b": 1, "a": [2]]]), "b=1;a=[2];")
        XCTAssertEqual(try render("{% for x in 'ab' %}{{ loop.previtem }}|{{ loop.nextitem }};{% endfor %}"), "|b;a|;")
        XCTAssertEqual(try render("{% set block %}  inner {{ 1 + 1 }} {% endset %}[{{ block | trim }}]"), "[inner 2]")
    }

    func testMacrosAndCallBlocks() throws {
        XCTAssertEqual(try render("{% macro m(a, b='x') %}[{{ a }}{{ b }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1) }}{{ m(1, 2, 3) }}"),
                       "[1x[]{}][12[3]{}]")
        XCTAssertEqual(try render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}body{% endcall %}"), "<body>")
        XCTAssertEqual(try render("{%- filter upper %}shout{% endfilter -%}"), "SHOUT")
    }

    func testExpressionsFollowPython() throws {
        XCTAssertEqual(try render("{{ 'abc'[::-1] }}{{ 3/2 }}{{ 4/2 }}{{ 7//2 }}{{ -7//2 }}{{ 7 % 3 }}{{ 2**10 }}"), "cba1.52.03-411024")
        XCTAssertEqual(try render("{{ [1,'a',None,True,{'k':1.5}] }}{{ (1,2) }}{{ 'it''s' }}"), "[1, 'a', None, True, {'k': 1.5}][1, 2]its")
        XCTAssertEqual(try render("{{ 1.0 }} {{ 1e20 }} {{ 1e15 }} {{ 0.1+0.2 }} {{ 10/3 }} {{ 1e-5 }}"),
                       "1.0 1e+20 1000000000000000.0 0.30000000000000004 3.3333333333333335 1e-05")
        XCTAssertEqual(try render("{{ True }}{{ true and 'x' }}{{ '' or 'y' }}{{ none is none }}{{ 'x' ~ none }}"), "TruexyTruexNone")
        XCTAssertEqual(try render("{{ 'a' if x is defined else 'b' }}{{ 'y' in 'xyz' }}{{ 3 not in [1, 2] }}{{ 1 < 2 < 3 }}"), "bTrueTrueTrue")
        XCTAssertEqual(try render("{{ 'aXbXc'.split('X', 1) }}{{ 'a b  c'.split() }}{{ '  t '.strip() }}{{ 'xxa'.lstrip('x') }}"),
                       "['a', 'bXc']['a', 'b', 'c']ta")
        XCTAssertEqual(try render("{{ 'abc'.startswith(('z', 'a')) }}{{ 'abc'.endswith('bc') }}{{ '<t{}>'.format(1) }}{{ d.get('q', 5) }}",
                                  ["d": [:]]), "TrueTrue<t1>5")
    }

    func testFilters() throws {
        XCTAssertEqual(try render("{{ [1,2]|map('string')|join(',') }}{{ ['a','b']|map('upper')|list }}{{ 'hello world'|title }}{{ 'hELLO'|capitalize }}"),
                       "1,2['A', 'B']Hello WorldHello")
        XCTAssertEqual(try render("{{ x|default('d') }}{{ ''|default('d') }}{{ ''|default('d', true) }}{{ none|default('d') }}"), "ddNone")
        XCTAssertEqual(try render("{{ 3|string + 'x' }}{{ '42'|int + 1 }}{{ 'x'|int }}{{ 3.7|int }}{{ [1,2,3][1:] }}{{ 'hello'[-3:] }}"),
                       "3x4303[2, 3]llo")
        XCTAssertEqual(try render("{{ [3,1,2]|sort }}{{ {'b':1,'a':2}|dictsort }}{{ ['a','A','b']|unique|list }}{{ [1,2]|first }}{{ 'ab'|last }}"),
                       "[1, 2, 3][['a', 2], ['b', 1]]['a', 'b']1b")
        let messages: JinjaValue = [["role": "user", "content": "u"], ["role": "system", "content": "s"]]
        XCTAssertEqual(try render("{{ messages|selectattr('role', 'equalto', 'system')|map(attribute='content')|join }}"
                                  + "{{ messages|rejectattr('role', 'equalto', 'system')|list|length }}", ["messages": messages]), "s1")
        XCTAssertEqual(try render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'x'|indent(2, true) }}"), "a\n  b\n\n  c|  x")
        XCTAssertEqual(try render("{{ 'a.b'|replace('.', '-') }}{{ [1, 2]|length }}{{ 'é'|length }}{{ {'a': 1}|items|list }}"), "a-b21[['a', 1]]")
    }

    /// transformers' tojson: json.dumps with ensure_ascii=False and Python's separators.
    func testToJSONMatchesPythonDumps() throws {
        let value = try JinjaJSON.parse(#"{"b": [1, 2.5, true, null, "é\n\"x\""], "a": {}, "c": [], "d": {"e": 1e-07}}"#)
        XCTAssertEqual(try render("{{ v|tojson }}", ["v": value]),
                       #"{"b": [1, 2.5, true, null, "é\n\"x\""], "a": {}, "c": [], "d": {"e": 1e-07}}"#)
        XCTAssertEqual(try render("{{ v|tojson(indent=2) }}", ["v": ["a": [1, 2], "b": [:]]]), "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}")
        XCTAssertEqual(try render("{{ v|tojson(separators=(',', ':'), sort_keys=true) }}", ["v": ["b": 1, "a": 2]]), #"{"a":2,"b":1}"#)
        XCTAssertEqual(try render("{{ 'é'|tojson(ensure_ascii=true) }}"), #""\u00e9""#)
    }

    func testErrorsAreTypedWithPositions() {
        assertTemplateError(.syntax, line: 2, column: 7, try JinjaTemplate("ok\n{% if %}{% endif %}"))
        assertTemplateError(.syntax, try JinjaTemplate("{% for x in y %}"))
        assertTemplateError(.syntax, line: 1, column: 6, try JinjaTemplate("{{ x | nosuchfilter }}"))
        assertTemplateError(.syntax, try JinjaTemplate("{{ 'unterminated }}"))
        assertTemplateError(.syntax, try JinjaTemplate("{% include 'other.jinja' %}"))
        assertTemplateError(.raised, line: 1, column: 4, try self.render("{{ raise_exception('no system role') }}"))
        assertTemplateError(.undefined, try self.render("{{ x.y }}"))
        assertTemplateError(.type, line: 1, column: 8, try self.render("{{ 'a' + 1 }}"))
        assertTemplateError(.security, try self.render("{% set l = [] %}{{ l.append(1) }}"))
        assertTemplateError(.type, try self.render("{{ x|tojson }}"))
    }

    /// Hostile templates end with a limit error instead of hanging or exhausting memory.
    func testLimitsStopHostileTemplates() {
        assertTemplateError(.limit, try self.render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"))
        assertTemplateError(.limit, try self.render("{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"))
        assertTemplateError(.limit, try self.render("{{ 'x' * 1000000000000 }}"))
        assertTemplateError(.limit, try self.render("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
                                                    limits: JinjaLimits(maximumLoopIterations: 10_000)))
        assertTemplateError(.limit, try self.render("{{ range(10000000000) }}"))
        assertTemplateError(.limit, try JinjaTemplate("{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"))
        assertTemplateError(.limit, try self.render("{% for i in range(10) %}{{ 'y' * 100 }}{% endfor %}",
                                                    limits: JinjaLimits(maximumOutputBytes: 500)))
        XCTAssertThrowsError(try JinjaJSON.parse(String(repeating: "[", count: 100_000)))
    }

    func testStrftimeNowUsesTheGivenDate() throws {
        let template = try JinjaTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d') }}")
        XCTAssertEqual(try template.render([:], date: JinjaDate(year: 2026, month: 7, day: 26)), "26 Jul 2026|Sunday July 26")
    }
}
