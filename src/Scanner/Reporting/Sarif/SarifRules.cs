using System.Globalization;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;

namespace DriverAudit.Scanner.Reporting.Sarif;

/// <summary>Maps rules and notification codes to SARIF reportingDescriptors, within GitHub's limits.</summary>
public static class SarifRules
{
    public const int MaxDescriptionLength = 1024;
    public const int MaxTags = 10; // GitHub keeps 10 of at most 20

    public static string LevelName(RuleLevel level) => level switch
    {
        RuleLevel.Error => "error",
        RuleLevel.Warning => "warning",
        _ => "note",
    };

    public static string LevelName(NotificationLevel level) => level switch
    {
        NotificationLevel.Error => "error",
        NotificationLevel.Warning => "warning",
        _ => "note",
    };

    public static SarifReportingDescriptor Describe(Rule rule, string? helpUri)
    {
        var properties = new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["precision"] = rule.Precision,
            ["tags"] = Tags(rule),
        };
        // GitHub reads security-severity as a string holding a number.
        if (rule.SecuritySeverity is double severity)
            properties["security-severity"] = severity.ToString("0.0", CultureInfo.InvariantCulture);
        if (rule.Cwe.Count > 0)
            properties["cwe"] = rule.Cwe.Select(c => "CWE-" + c.ToString(CultureInfo.InvariantCulture)).ToArray();

        return new SarifReportingDescriptor
        {
            Id = rule.Id,
            Name = rule.Name,
            ShortDescription = new SarifMessage(Clip(rule.Title)),
            FullDescription = new SarifMessage(Clip(rule.Description.Trim())),
            Help = new SarifMessage(MarkdownToText(rule.Help), rule.Help),
            HelpUri = helpUri,
            DefaultConfiguration = new SarifConfiguration(LevelName(rule.Level)),
            Properties = properties,
        };
    }

    internal static string[] Tags(Rule rule)
    {
        var tags = new List<string>();
        if (rule.SecuritySeverity is not null) tags.Add("security");
        foreach (var cwe in rule.Cwe) tags.Add("external/cwe/cwe-" + cwe.ToString(CultureInfo.InvariantCulture));
        foreach (var tag in rule.Tags)
            if (!tags.Contains(tag, StringComparer.Ordinal)) tags.Add(tag);
        return tags.Take(MaxTags).ToArray();
    }

    public static IReadOnlyList<SarifReportingDescriptor> Notifications() =>
        NotificationCodes.All.Select(n => new SarifReportingDescriptor
        {
            Id = n.Id,
            Name = n.Name,
            ShortDescription = new SarifMessage(n.Description),
        }).ToList();

    private static string Clip(string text) =>
        text.Length <= MaxDescriptionLength ? text : text[..(MaxDescriptionLength - 1)] + "…";

    /// <summary>help.text must be plain: drop code fences and heading marks, keep the words and the code.</summary>
    internal static string MarkdownToText(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n").Split('\n')
            .Where(l => !l.TrimStart().StartsWith("```", StringComparison.Ordinal))
            .Select(l => l.TrimStart().StartsWith('#') ? l.TrimStart('#', ' ') : l);
        return string.Join("\n", lines).Trim();
    }
}
