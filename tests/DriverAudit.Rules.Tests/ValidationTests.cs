using static DriverAudit.Rules.Tests.RuleText;

namespace DriverAudit.Rules.Tests;

public class ValidationTests
{
    /// <summary>1-based line and column of the n-th occurrence of <paramref name="token"/>, computed from the text.</summary>
    private static (int Line, int Column) Pos(string text, string token, int occurrence = 1)
    {
        int index = -1;
        for (int i = 0; i < occurrence; i++) index = text.IndexOf(token, index + 1, StringComparison.Ordinal);
        Assert.True(index >= 0, $"'{token}' not in the text");
        int line = 1 + text[..index].Count(c => c == '\n');
        int column = index - (text.LastIndexOf('\n', index) + 1) + 1;
        return (line, column);
    }

    private static void ErrorAt(string text, string token, string fragment, int occurrence = 1)
    {
        var (line, column) = Pos(text, token, occurrence);
        HasError(Errors(text), line, column, fragment);
    }

    [Fact]
    public void Positions_are_one_based_line_and_column()
    {
        var errors = Errors(Make("imports: ExAllocatePool"));
        HasError(errors, MatchLine, 3, "unknown feature or operator 'imports'");
        Assert.Equal("r0.yaml:10:3: unknown feature or operator 'imports' (expected one of all, any, not, at-least, count, rule, import, export, section, header, characteristic, module, string, version-info, signature, hash, call, instruction)",
            Assert.Single(errors).ToString());
    }

    [Fact]
    public void Missing_required_keys_are_all_reported_at_the_mapping()
    {
        var errors = Errors("id: TST001\ntitle: Only a title\n");
        foreach (var key in new[] { "name", "level", "precision", "description", "help", "message", "match" })
            HasError(errors, 1, 1, $"missing required key '{key}'");
        Assert.Equal(7, errors.Count);
    }

    [Fact]
    public void Unknown_top_level_key()
    {
        var text = Make("import: X", extra: "colour: red");
        ErrorAt(text, "colour", "unknown key 'colour' in a rule");
    }

    [Fact]
    public void All_errors_of_a_file_are_reported_in_position_order()
    {
        var text = Make("any: [{import: \"/[a/\"}, {section: {writable: yes}}, {characteristic: shiny}]", message: "{artifact} has {bogus}");
        text = text.Replace("level: warning", "level: loud").Replace("precision: high", "precision: exact");
        var errors = Errors(text);
        HasError(errors, 4, 8, "'level' must be one of note, warning, error, found 'loud'");
        HasError(errors, 5, 12, "'precision' must be one of very-high, high, medium, low");
        HasError(errors, 8, 10, "unknown placeholder {bogus}");
        HasError(errors, 8, 10, "complete sentence");
        var (l1, c1) = Pos(text, "\"/[a/");
        HasError(errors, l1, c1, "invalid regex '[a'");
        var (l2, c2) = Pos(text, "yes");
        HasError(errors, l2, c2, "'writable' must be true or false, found 'yes'");
        var (l3, c3) = Pos(text, "shiny");
        HasError(errors, l3, c3, "unknown characteristic 'shiny'");
        Assert.Equal(7, errors.Count);
        Assert.Equal(errors.OrderBy(e => e.Line).ThenBy(e => e.Column), errors);
    }

    [Theory]
    [InlineData("id: !!python/object/apply:os.system [\"echo\"]", "type tags (tag:yaml.org,2002:python/object/apply:os.system)")]
    [InlineData("id: !foo TST001", "type tags (!foo)")]
    [InlineData("id: ! TST001", "YAML tags ('!')")]
    public void Yaml_tags_are_refused(string idLine, string fragment)
    {
        var text = Make("import: X").Replace("id: TST001", idLine);
        HasError(Errors(text), 1, 5, fragment);
    }

    [Fact]
    public void Anchors_and_aliases_are_refused()
    {
        var text = Make("any: [&a {import: X}, *a]");
        ErrorAt(text, "&a", "YAML anchors (&a) are not allowed");
        ErrorAt(text, "*a", "YAML aliases (*a) are not allowed");
    }

    [Fact]
    public void Billion_laughs_is_refused_without_expansion()
    {
        var text = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
        var errors = Errors(text);
        Assert.Contains(errors, e => e.Message.Contains("aliases", StringComparison.Ordinal));
        Assert.True(errors.Count < 100);
    }

    [Fact]
    public void Duplicate_keys()
    {
        var text = Make("import: X", extra: "title: Again");
        ErrorAt(text, "title", "duplicate key 'title' (first at line 3, column 1)", occurrence: 2);
    }

    [Fact]
    public void Yaml_syntax_error_names_its_position()
    {
        var errors = Errors("id: TST001\nname: [unclosed\n");
        Assert.Contains(errors, e => e.Line >= 2 && e.Message.StartsWith("invalid YAML: ", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("", 1, 1, "holds no YAML document")]
    [InlineData("id: A\n---\nid: B\n", 2, 1, "more than one YAML document")]
    [InlineData("- just\n- a list\n", 1, 1, "a rule file must be a mapping")]
    public void File_shape(string text, int line, int column, string fragment) => HasError(Errors(text), line, column, fragment);

    [Fact]
    public void Deep_nesting_is_bounded()
    {
        var deep = string.Concat(Enumerable.Repeat("{not: ", 200)) + "{import: X}" + new string('}', 200);
        Assert.Contains(Errors(Make("not: " + deep)), e => e.Message.Contains("nesting deeper than", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("DA101")]
    [InlineData("DA10011")]
    [InlineData("da1001")]
    [InlineData("ACME01")]
    [InlineData("ACMEACMEACME001")]
    [InlineData("\"DA1001\\n\"")]
    public void Invalid_ids(string id) => HasError(Errors(Make("import: X", id: id)), 1, 5, "not a valid rule id");

    [Theory]
    [InlineData("DA1001")]
    [InlineData("ACME001")]
    [InlineData("DAX001")]
    [InlineData("X1Y2Z3001")]
    [InlineData("CORP12345")]
    public void Valid_ids(string id) => Assert.Equal(id, Assert.Single(Load(Make("import: X", id: id)).Rules).Id);

    [Theory]
    [InlineData("untaggedPool")]
    [InlineData("Untagged-Pool")]
    [InlineData("U")]
    public void Invalid_names(string name) => HasError(Errors(Make("import: X", name: name)), 2, 7, "PascalCase");

    /// <param name="at">Where the error must be: the text of the first occurrence, '^' marking the exact character.</param>
    [Theory]
    [InlineData("security-severity: 11", "severity: ^11", "between 0.1 and 10.0, found 11")]
    [InlineData("security-severity: 0", "severity: ^0", "between 0.1 and 10.0, found 0")]
    [InlineData("security-severity: high", "severity: ^high", "must be a number, found 'high'")]
    [InlineData("security-severity: \"7.5\"", "^\"7.5", "must be a number")]
    [InlineData("report: per-rule", "^per-rule", "'report' must be one of per-anchor, per-image")]
    [InlineData("tags: pool", "tags: ^pool", "'tags' must be a list")]
    [InlineData("tags: [Pool]", "^Pool", "tag 'Pool' must be lowercase")]
    [InlineData("tags: [pool, pool]", "pool, ^pool", "duplicate tag 'pool'")]
    [InlineData("tags: [a, b, c, d, e, f, g, h, i, j, k]", "^[a,", "11 tags; GitHub keeps at most 10")]
    [InlineData("tags: [a, b, c, d, e, f, g, h, i]\ncwe: [1, 2]", "^[a,", "9 tags and 2 CWE ids make 11 SARIF tags")]
    [InlineData("cwe: [CWE-401]", "^CWE-401", "a CWE id (a number such as 401) must be an integer")]
    [InlineData("cwe: [401, 401]", "401, ^401", "duplicate CWE 401")]
    [InlineData("references: [learn.microsoft.com/x]", "^learn.", "must be an absolute http(s) URL")]
    [InlineData("examples: {match: [../secret.sys]}", "^../secret", "must be relative to the repository root")]
    [InlineData("examples: {no-match: C:/x.sys}", "^C:/x", "must be relative to the repository root")]
    [InlineData("examples: {matches: [a.sys]}", "^matches", "unknown key 'matches' in 'examples'")]
    public void Optional_metadata(string extra, string at, string fragment)
    {
        var text = Make("import: X", extra: extra);
        var (line, column) = Pos(text, at.Replace("^", ""));
        HasError(Errors(text), line, column + at.IndexOf('^'), fragment);
    }

    [Fact]
    public void Description_longer_than_1024_characters()
    {
        var text = Make("import: X").Replace("description: A rule used by tests.", "description: " + new string('x', 1025));
        HasError(Errors(text), 6, 14, "'description' is 1025 characters long");
    }

    [Fact]
    public void Title_must_be_one_line()
    {
        var text = Make("import: X").Replace("title: Test rule", "title: |\n  Two\n  lines");
        HasError(Errors(text), 3, 8, "'title' must be a single line");
    }

    [Theory]
    [InlineData("import: \"\"", "the pattern is empty")]
    [InlineData("import: \"!X\"", "empty module before '!'")]
    [InlineData("import: \"ntoskrnl!\"", "empty function name after '!'")]
    [InlineData("import: ntoskrnl!#x", "'#x' is not an ordinal")]
    [InlineData("import: ntoskrnl!#70000", "'#70000' is not an ordinal")]
    [InlineData("import: /abc", "has no closing '/'")]
    [InlineData("import: /abc/q", "unknown regex flag 'q'")]
    [InlineData("import: /(a)\\1/", "non-backtracking engine refuses")]
    [InlineData("import: /(?<=a)b/", "non-backtracking engine refuses")]
    [InlineData("import: \"Ex Allocate\"", "contains whitespace")]
    [InlineData("import: [X]", "'import' expects a pattern")]
    [InlineData("import: {name: \"ntoskrnl!X\"}", "'name' must not contain '!'")]
    [InlineData("import: {name: \"#12\"}", "give an ordinal with 'ordinal:'")]
    [InlineData("import: {name: X, ordinal: 1}", "not both")]
    [InlineData("import: {ordinal: -1}", "'ordinal' must be between 0 and 65535")]
    [InlineData("import: {delayed: yes}", "'delayed' must be true or false")]
    [InlineData("import: {delayed: \"true\"}", "'delayed' must be true or false")]
    [InlineData("import: {}", "needs at least one of name, module")]
    [InlineData("import: {nam: X}", "unknown key 'nam' in 'import'")]
    [InlineData("export: {forwarder: [x]}", "'forwarder' (true, false or a pattern)")]
    [InlineData("export: \"#x\"", "is not an ordinal")]
    [InlineData("section: {writable: 1}", "'writable' must be true or false")]
    [InlineData("section: {colour: red}", "unknown key 'colour' in 'section'")]
    [InlineData("section: []", "'section' expects a name pattern or a mapping")]
    [InlineData("header: {machine: mips}", "unknown 'machine' value 'mips'")]
    [InlineData("header: {subsystem: [native, gui]}", "unknown 'subsystem' value 'gui'")]
    [InlineData("header: {dll-characteristics: {has: [NX]}}", "unknown 'dll-characteristics' name 'NX'")]
    [InlineData("header: {dll-characteristics: {has: NX_COMPAT, lacks: [NX_COMPAT]}}", "same flag under 'has' and 'lacks'")]
    [InlineData("header: {characteristics: {missing: [DLL]}}", "unknown key 'missing' in 'characteristics'")]
    [InlineData("header: {section-alignment: {below: 4096}}", "unknown key 'below'")]
    [InlineData("header: {section-alignment: {lt: big}}", "'lt' must be an integer")]
    [InlineData("header: x64", "'header' must be a mapping")]
    [InlineData("characteristic: shiny", "unknown characteristic 'shiny'")]
    [InlineData("characteristic: [cfg]", "'characteristic' must be a string")]
    [InlineData("call: {api: MmMapIoSpace, tag: {eq: 0}}", "'tag' is known only for")]
    [InlineData("all: []", "'all' needs at least one item")]
    [InlineData("any: {import: X}", "'any' must be a list")]
    [InlineData("not: [import: X]", "a match node must be a mapping")]
    [InlineData("at-least: {n: 3, of: [{import: X}, {import: Y}]}", "'n' is 3 but 'of' lists only 2 items")]
    [InlineData("at-least: {n: 0, of: [{import: X}]}", "'n' must be between 1 and 1000")]
    [InlineData("at-least: {of: [{import: X}]}", "'at-least' needs 'n'")]
    [InlineData("count: {of: {any: [{import: X}]}, min: 1}", "counts the items of one import, export, section, string, call or instruction feature")]
    [InlineData("count: {of: {characteristic: cfg}, min: 1}", "counts the items of one import, export, section, string, call or instruction feature")]
    [InlineData("count: {of: {import: X}, min: 3, max: 2}", "'min' (3) is greater than 'max' (2)")]
    [InlineData("count: {of: {import: X}, min: 0}", "'min: 0' without 'max' is always true")]
    [InlineData("count: {of: {import: X}}", "'count' needs 'min', 'max' or both")]
    [InlineData("rule: lowercase", "'lowercase' is not a valid rule id")]
    public void Match_errors_point_at_the_offending_node(string match, string fragment)
    {
        var errors = Errors(Make(match));
        Assert.True(errors.All(e => e.Line == MatchLine), string.Join("\n", errors));
        Assert.Contains(errors, e => e.Message.Contains(fragment, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("import: /abc/q", "/abc/q")]
    [InlineData("import: {name: X, delayed: yes}", "yes")]
    [InlineData("section: {name: .text, writable: 1}", "1}")]
    [InlineData("header: {dll-characteristics: {has: [NX_COMPAT, NX]}}", "NX]")]
    [InlineData("all: [{import: X}, {imprt: Y}]", "imprt")]
    [InlineData("any: [{import: X, export: Y}]", "export")]
    public void Match_error_columns(string match, string token)
    {
        var text = Make(match);
        var (line, column) = Pos(text, token);
        Assert.Contains(Errors(text), e => e.Line == line && e.Column == column);
    }

    [Fact]
    public void Duplicate_ids_and_names_across_sources()
    {
        var errors = Errors(
            Make("import: X", id: "TST001", name: "First"),
            Make("import: Y", id: "TST001", name: "Second"),
            Make("import: Z", id: "TST002", name: "FIRST"));
        HasError(errors, 1, 5, "duplicate rule id TST001 (already defined at r0.yaml:1:5)", file: "r1.yaml");
        HasError(errors, 2, 7, "duplicate rule name FIRST (already used by TST001 at r0.yaml:2:7)", file: "r2.yaml");
        Assert.Equal(2, errors.Count);
    }

    [Fact]
    public void Unknown_rule_reference()
    {
        var text = Make("all: [{import: X}, {rule: TST999}]");
        var (line, column) = Pos(text, "TST999");
        Assert.Equal((MatchLine, 29), (line, column));
        HasError(Errors(text), line, column, "'rule: TST999' names no loaded rule");
    }

    [Fact]
    public void Reference_to_a_broken_rule_reports_only_the_broken_rule()
    {
        var errors = Errors(
            Make("rule: TST002", id: "TST001", name: "First"),
            Make("imprt: Y", id: "TST002", name: "Second"));
        var error = Assert.Single(errors);
        Assert.Equal("r1.yaml", error.File);
    }

    [Fact]
    public void Reference_cycles_are_load_errors()
    {
        var errors = Errors(
            Make("rule: TST002", id: "TST001", name: "First"),
            Make("any: [{import: X}, {rule: TST003}]", id: "TST002", name: "Second"),
            Make("not: {rule: TST001}", id: "TST003", name: "Third"),
            Make("rule: TST004", id: "TST004", name: "Selfish"));
        HasError(errors, MatchLine, 15, "rule reference cycle: TST001 -> TST002 -> TST003 -> TST001", file: "r2.yaml");
        HasError(errors, MatchLine, 9, "rule reference cycle: TST004 -> TST004", file: "r3.yaml");
        Assert.Equal(2, errors.Count);
    }

    [Theory]
    [InlineData("section: RWX", "{artifact} imports {import}.", "placeholder {import} is only known for import or call anchors, but this rule can report on section")]
    [InlineData("not: {import: X}", "{artifact} lacks {import}.", "can report on image")]
    [InlineData("any: [{import: X}, {characteristic: cfg}]", "{artifact} imports {import}.", "can report on image")]
    [InlineData("all: [{characteristic: cfg}, {export: X}]", "{artifact} exports {export} from {module}.", "placeholder {module} is only known for import or call anchors, but this rule can report on export")]
    [InlineData("count: {of: {import: X}, max: 3}", "{artifact} imports {import}.", "can report on image")]
    [InlineData("import: X", "{artifact} tags {tag}.", "placeholder {tag} is only known for call anchors, but this rule can report on import")]
    public void Placeholders_must_be_available_for_every_anchor_the_rule_can_report(string match, string message, string fragment)
    {
        HasError(Errors(Make(match, message: message)), 8, 10, fragment);
    }

    [Fact]
    public void Per_image_rules_cannot_use_item_placeholders()
    {
        HasError(Errors(Make("import: X", message: "{artifact} imports {import}.", extra: "report: per-image")), 8, 10, "can report on image");
    }

    [Theory]
    [InlineData("{artifact imports X.", "unclosed '{'")]
    [InlineData("{artifact} imports X }.", "stray '}'")]
    [InlineData("{Artifact} imports X.", "unknown placeholder {Artifact}")]
    [InlineData("{artifact} imports X", "complete sentence")]
    public void Message_syntax(string message, string fragment) => HasError(Errors(Make("import: X", message: message)), 8, 10, fragment);

    [Fact]
    public void Placeholders_available_on_every_path_are_accepted()
    {
        var set = Load(Make("all: [{characteristic: cfg}, {import: X}, {section: Y}]", message: "{artifact} imports {import} ({module}, {value})."));
        Assert.Single(set.Rules);
    }

    [Fact]
    public void Placeholder_errors_are_reported_together_with_other_errors()
    {
        var errors = Errors(
            Make("section: RWX", id: "TST001", name: "First", message: "{artifact} imports {import}."),
            Make("imprt: X", id: "TST002", name: "Second"));
        HasError(errors, 8, 10, "placeholder {import} is only known for import or call anchors");
        HasError(errors, MatchLine, 3, "unknown feature or operator 'imprt'", file: "r1.yaml");
    }

    [Fact]
    public void Oversized_files_regexes_and_complex_keys_are_refused()
    {
        HasError(Errors("# " + new string('x', 300_000)), 1, 1, "a rule file may hold at most 262144");
        HasError(Errors(Make("import: /" + new string('a', 513) + "/")), MatchLine, 11, "longer than 512 characters");
        HasError(Errors(Make("import: X", extra: "? [a, b]\n: c")), 11, 3, "mapping keys must be plain strings");
    }

    [Fact]
    public void Errors_across_files_keep_source_order()
    {
        var errors = Errors(Make("imprt: X", id: "TST001", name: "First"), "", Make("import: /x", id: "TST002", name: "Third"));
        Assert.Equal(["r0.yaml", "r1.yaml", "r2.yaml"], errors.Select(e => e.File));
    }
}
