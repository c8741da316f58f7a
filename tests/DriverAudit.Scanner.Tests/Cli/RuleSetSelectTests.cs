using System.Reflection;
using DriverAudit.Rules.Engine;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary><see cref="RuleSet.Select"/>: what a selected set reports, at which level, and what it still evaluates.</summary>
public sealed class RuleSetSelectTests
{
    private static string[] Ids(IEnumerable<RuleMatch> matches) => matches.Select(m => m.Rule.Id).Distinct().ToArray();

    [Fact]
    public void Unselected_set_reports_every_matching_rule()
    {
        var matches = CustomRules.Pack().Evaluate(CustomRules.Facts("x64", "pool_legacy.sys"));
        Assert.Equal(["ACME001", "ACME002", "ACME004"], Ids(matches));
    }

    [Fact]
    public void A_rule_referenced_by_a_kept_rule_still_evaluates_but_does_not_report()
    {
        var pack = CustomRules.Pack();
        var selected = pack.Select(r => r.Id == "ACME002");
        Assert.Equal(["ACME002"], selected.Rules.Select(r => r.Id));
        var matches = selected.Evaluate(CustomRules.Facts("x64", "pool_legacy.sys"));
        Assert.Equal(["ACME002"], Ids(matches));
        // It carries the referenced rule's evidence: the import anchor, not the image.
        Assert.Equal("ntoskrnl.exe!ExAllocatePool", Assert.Single(matches).Anchor.Key);
        // And it does not match where the referenced rule does not.
        Assert.Empty(selected.Evaluate(CustomRules.Facts("x64", "pool_modern.sys")));
    }

    [Fact]
    public void Dropping_a_referenced_rule_keeps_the_referring_rule_working()
    {
        var selected = CustomRules.Pack().Select(r => r.Id != "ACME001");
        Assert.Equal(["ACME002", "ACME004"], Ids(selected.Evaluate(CustomRules.Facts("x64", "pool_legacy.sys"))));
    }

    [Fact]
    public void Level_overrides_show_in_rules_and_in_matches_and_leave_the_loaded_set_alone()
    {
        var pack = CustomRules.Pack();
        var levels = new Dictionary<string, RuleLevel> { ["ACME001"] = RuleLevel.Error, ["ACME004"] = RuleLevel.Warning };
        var selected = pack.Select(_ => true, levels);

        Assert.Equal(RuleLevel.Error, selected.Rules.Single(r => r.Id == "ACME001").Level);
        Assert.Equal(RuleLevel.Error, selected.Rules.Single(r => r.Id == "ACME002").Level); // as loaded
        var matches = selected.Evaluate(CustomRules.Facts("x64", "pool_legacy.sys"));
        Assert.Equal(RuleLevel.Error, matches.First(m => m.Rule.Id == "ACME001").Rule.Level);
        Assert.Equal(RuleLevel.Warning, matches.First(m => m.Rule.Id == "ACME004").Rule.Level);

        Assert.Equal(RuleLevel.Warning, pack.Rules.Single(r => r.Id == "ACME001").Level);
        Assert.Equal(RuleLevel.Note, pack.Evaluate(CustomRules.Facts("x64", "pool_legacy.sys")).First(m => m.Rule.Id == "ACME004").Rule.Level);
    }

    [Fact]
    public void Selecting_from_a_selection_narrows_it_and_keeps_earlier_overrides()
    {
        var first = CustomRules.Pack().Select(r => r.Id != "ACME003", new Dictionary<string, RuleLevel> { ["ACME004"] = RuleLevel.Error });
        var second = first.Select(r => r.Level == RuleLevel.Error);
        Assert.Equal(["ACME002", "ACME004"], second.Rules.Select(r => r.Id));
        Assert.Equal(["ACME002", "ACME004"], Ids(second.Evaluate(CustomRules.Facts("x64", "pool_legacy.sys"))));
        Assert.Empty(first.Select(r => r.Id == "ACME003").Rules); // not brought back
    }

    [Fact]
    public void Selecting_nothing_evaluates_to_nothing()
    {
        var none = CustomRules.Pack().Select(_ => false);
        Assert.Empty(none.Rules);
        Assert.Empty(none.Evaluate(CustomRules.Facts("x64", "wx_section.sys")));
    }

    [Fact]
    public void Matches_stay_ordered_by_rule_id()
    {
        var selected = CustomRules.Pack().Select(r => r.Id is "ACME004" or "ACME003" or "ACME001");
        var ids = selected.Evaluate(CustomRules.Facts("x64", "wx_section.sys")).Select(m => m.Rule.Id).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.Contains("ACME003", ids);
    }

    /// <summary>A re-levelled rule is a copy: every other property must survive, including ones added later.</summary>
    [Fact]
    public void A_relevelled_rule_copies_every_other_property()
    {
        var pack = CustomRules.Pack();
        var original = pack.Rules.Single(r => r.Id == "ACME001");
        var copy = pack.Select(_ => true, new Dictionary<string, RuleLevel> { ["ACME001"] = RuleLevel.Note }).Rules.Single(r => r.Id == "ACME001");
        Assert.NotSame(original, copy);
        foreach (var property in typeof(Rule).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.Name == nameof(Rule.Level)) continue;
            Assert.True(Equals(property.GetValue(original), property.GetValue(copy)), $"Rule.{property.Name} was not copied");
        }
    }
}
