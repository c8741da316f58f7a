using DriverAudit.Rules.Engine;

namespace DriverAudit.Rules.Tests;

/// <summary>Builds small rule files. The match block starts at line 10, column 3 (see <see cref="MatchLine"/>).</summary>
internal static class RuleText
{
    public const int MatchLine = 10;

    /// <param name="match">YAML of the match tree, written at column 1; it is indented under <c>match:</c>.</param>
    public static string Make(string match, string id = "TST001", string name = "TestRule",
        string message = "{artifact} matched.", string extra = "")
    {
        var indented = string.Join("\n", match.Trim('\n').Split('\n').Select(l => "  " + l));
        return $"""
            id: {id}
            name: {name}
            title: Test rule
            level: warning
            precision: high
            description: A rule used by tests.
            help: Do not do that.
            message: "{message}"
            match:
            {indented}
            {extra}
            """;
    }

    public static RuleSet Load(params string[] texts) =>
        RuleSet.Load(texts.Select((t, i) => new RuleSource($"r{i}.yaml", t)));

    public static RuleSet LoadOne(string match, string message = "{artifact} matched.", string extra = "") =>
        Load(Make(match, message: message, extra: extra));

    public static IReadOnlyList<RuleError> Errors(params string[] texts)
    {
        var ex = Assert.Throws<RuleLoadException>(() => Load(texts));
        Assert.NotEmpty(ex.Errors);
        return ex.Errors;
    }

    /// <summary>Asserts one error at line:column whose message contains <paramref name="fragment"/>.</summary>
    public static void HasError(IReadOnlyList<RuleError> errors, int line, int column, string fragment, string file = "r0.yaml")
    {
        Assert.True(
            errors.Any(e => e.File == file && e.Line == line && e.Column == column && e.Message.Contains(fragment, StringComparison.Ordinal)),
            $"expected {file}:{line}:{column} containing '{fragment}', got:\n{string.Join("\n", errors)}");
    }

    public static bool Matches(string match, FakeFacts facts) => LoadOne(match).Evaluate(facts).Count > 0;
}
