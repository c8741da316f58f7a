using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Loading;
using DriverAudit.Rules.Patterns;
using static DriverAudit.Rules.Tests.RuleText;

namespace DriverAudit.Rules.Tests;

/// <summary>Limits checked at load: regex size, rule count, reference depth, and no recursion a rule set can overflow.</summary>
public class LimitTests
{
    private static string Chain(int i, int count) =>
        Make(i + 1 < count ? $"rule: TC{i + 1:00000}" : "import: X", id: $"TC{i:00000}", name: $"Chain{i:00000}");

    [Fact]
    public void A_regex_over_the_engines_size_limit_is_a_rule_error_at_its_position()
    {
        // Short text, huge automaton: the non-backtracking engine refuses it, so it must fail at load.
        var errors = Errors(Make("import: {name: '/(ab{100}){100}/'}"));
        HasError(errors, MatchLine, 18, "uses a construct the non-backtracking engine refuses");
    }

    [Theory]
    [InlineData("abc", 3)]
    [InlineData("a{1000}", 1000)]
    [InlineData("(a{100}){100}", 10_001)]
    [InlineData("(a|b|c)*", 4)]
    [InlineData("[a-z{}]{10}x", 11)]
    [InlineData(@"\p{L}{5}", 5)]
    public void Regex_size_estimates_multiply_repetitions(string body, long expectedAtLeast)
    {
        var size = NamePattern.EstimateSize(body);
        Assert.InRange(size, expectedAtLeast, expectedAtLeast * 2 + 2);
    }

    [Fact]
    public void The_regexes_of_a_set_share_one_size_budget()
    {
        // Each regex is below the eager-build size; together they pass the set's budget.
        var count = (int)(NamePattern.MaxTotalRegexSize / 900) + 1;
        var texts = Enumerable.Range(0, count).Select(i => Make("import: {name: '/x{899}/'}", id: $"TR{i:00000}", name: $"Regex{i:00000}")).ToArray();
        var errors = Assert.Throws<RuleLoadException>(() => Load(texts)).Errors;
        var error = Assert.Single(errors);
        Assert.Contains("too large together", error.Message);
        Assert.Equal(MatchLine, error.Line);

        // The budget is per load: a second, small load is not charged for the first.
        Assert.Single(LoadOne("import: {name: '/x{899}/'}").Rules);
    }

    [Fact]
    public void A_long_rule_chain_is_one_load_error_not_a_stack_overflow()
    {
        // 2,000 links on a 128 KiB stack: a recursive walk needs more than that (the 60,000-link chain of the
        // report overflowed the 8 MiB main stack), an iterative one needs almost nothing. Kept small for speed.
        const int count = 2_000;
        var texts = Enumerable.Range(0, count).Select(i => Chain(i, count)).ToArray();
        IReadOnlyList<RuleError>? errors = null;
        var thread = new Thread(() => errors = Assert.Throws<RuleLoadException>(() => Load(texts)).Errors, maxStackSize: 128 * 1024);
        thread.Start();
        thread.Join();

        var deep = Assert.Single(errors!);
        Assert.Equal("r0.yaml", deep.File); // one error, where the chain starts
        Assert.Equal((MatchLine, 9), (deep.Line, deep.Column));
        Assert.Contains("TC00000 starts a chain of 1,999 nested 'rule:' references; at most 32", deep.Message);
    }

    [Fact]
    public void The_rule_count_is_limited()
    {
        var texts = Enumerable.Range(0, 21).Select(i => Make("import: X", id: $"TN{i:00000}", name: $"Many{i:00000}")).ToArray();
        var errors = Assert.Throws<RuleLoadException>(() => RuleSet.Load(texts.Select((t, i) => new RuleSource($"r{i}.yaml", t)), new RuleLoadOptions { MaxRules = 20 })).Errors;
        var error = Assert.Single(errors);
        Assert.Equal(("r20.yaml", 1, 5), (error.File, error.Line, error.Column));
        Assert.Equal("too many rules: at most 20 are loaded in one set, and this is rule 21", error.Message);
        Assert.Equal(10_000, new RuleLoadOptions().MaxRules);
    }

    [Fact]
    public void Chains_up_to_the_depth_limit_load_and_one_more_is_an_error()
    {
        var ok = Load([.. Enumerable.Range(0, RuleLoader.MaxReferenceDepth + 1).Select(i => Chain(i, RuleLoader.MaxReferenceDepth + 1))]);
        Assert.Equal(RuleLoader.MaxReferenceDepth + 1, ok.Rules.Count);

        var errors = Errors([.. Enumerable.Range(0, RuleLoader.MaxReferenceDepth + 2).Select(i => Chain(i, RuleLoader.MaxReferenceDepth + 2))]);
        HasError(errors, MatchLine, 9, $"chain of {RuleLoader.MaxReferenceDepth + 1} nested");
    }

    [Fact]
    public void A_long_cycle_is_reported_once_and_shortened()
    {
        const int count = 500;
        var texts = Enumerable.Range(0, count).Select(i => Make($"rule: TC{(i + 1) % count:00000}", id: $"TC{i:00000}", name: $"Chain{i:00000}")).ToArray();
        var error = Assert.Single(Errors(texts));
        Assert.Contains("rule reference cycle: TC00000 -> TC00001", error.Message);
        Assert.Contains("(491 more)", error.Message);
    }
}
