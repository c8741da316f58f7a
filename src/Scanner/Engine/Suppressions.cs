using System.Globalization;
using DriverAudit.Rules.Patterns;
using Microsoft.Extensions.FileSystemGlobbing;

namespace DriverAudit.Scanner.Engine;

/// <summary>
/// One entry of the config file's <c>suppressions:</c> list: results of <see cref="Rule"/> on the artifacts it
/// scopes (every given scope must match) are accepted risks. They stay in the reports, marked, and do not gate.
/// </summary>
internal sealed record Suppression
{
    /// <summary>Rule id or name; <c>*</c> and <c>?</c> are wildcards.</summary>
    public required string Rule { get; init; }
    /// <summary>Glob (<c>**</c>, <c>*</c>, <c>?</c>) over the path as reported: relative to the source root, <c>/</c>-separated.</summary>
    public string? Path { get; init; }
    /// <summary>Lower-case hex SHA-256 of the file.</summary>
    public string? Sha256 { get; init; }
    /// <summary>Name of a module inside a kernel dump (wildcards, case-insensitive).</summary>
    public string? Module { get; init; }
    public required string Justification { get; init; }
    /// <summary>Last day (UTC) the suppression applies; null = no expiry.</summary>
    public DateOnly? Expires { get; init; }
    /// <summary>The config file, as reported (a URI relative to the source root when under it).</summary>
    public required string ConfigUri { get; init; }
    public required int Line { get; init; }
    /// <summary>"driveraudit.yaml:12" for messages.</summary>
    public string Origin => $"{System.IO.Path.GetFileName(ConfigUri)}:{Line}";

    private Matcher? _matcher;

    public bool Matches(Finding finding, ArtifactReport artifact)
    {
        if (!Wildcard.IsMatch(Rule, finding.Rule.Id, ignoreCase: true) && !Wildcard.IsMatch(Rule, finding.Rule.Name, ignoreCase: true)) return false;
        if (Sha256 is not null && !string.Equals(Sha256, artifact.Sha256, StringComparison.OrdinalIgnoreCase)) return false;
        if (Module is not null && (artifact.ModuleName is null || !Wildcard.IsMatch(Module, artifact.ModuleName, ignoreCase: true))) return false;
        if (Path is not null)
        {
            // Windows paths are case-insensitive, as are --include globs. A path outside the source root is an absolute
            // file URI: its local path is matched, without the leading slash (as the glob is written).
            _matcher ??= NewMatcher(Path);
            var reported = artifact.DisplayPath.Replace('\\', '/').TrimStart('/');
            if (!_matcher.Match(reported).HasMatches) return false;
        }
        return true;
    }

    private static Matcher NewMatcher(string glob)
    {
        var m = new Matcher(StringComparison.OrdinalIgnoreCase);
        m.AddInclude(glob.Replace('\\', '/').TrimStart('/'));
        return m;
    }

    /// <summary>The status word for messages: "until 2026-12-31" or "".</summary>
    public string Until => Expires is { } d ? $" until {d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}" : "";
}

/// <summary>
/// The suppressions of a run, split by the run's date into those that apply and those that expired (which apply to
/// nothing and are reported, so an accepted risk cannot silently outlive its review date).
/// </summary>
internal sealed class SuppressionSet
{
    public static SuppressionSet None { get; } = new([], DateOnly.MinValue);

    public SuppressionSet(IReadOnlyList<Suppression> all, DateOnly today)
    {
        Active = [.. all.Where(s => s.Expires is not { } d || d >= today)];
        Expired = [.. all.Where(s => s.Expires is { } d && d < today)];
    }

    public IReadOnlyList<Suppression> Active { get; }
    public IReadOnlyList<Suppression> Expired { get; }

    /// <summary>A SHA-256 scope needs each file's hash, which is otherwise computed only for SARIF.</summary>
    public bool NeedsHashes => Active.Any(s => s.Sha256 is not null);

    /// <summary>One warning per expired suppression, located at its config entry.</summary>
    public IReadOnlyList<Notification> ExpiredNotifications() =>
    [
        .. Expired.Select(s => new Notification(NotificationCodes.SuppressionExpired, NotificationLevel.Warning,
            $"{s.Origin}: the suppression of {s.Rule}{Scope(s)} expired on {s.Expires!.Value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}; " +
            "its results are reported and gate again. Review it: renew its 'expires' date or remove it.", s.ConfigUri)),
    ];

    private static string Scope(Suppression s)
    {
        var parts = new List<string>();
        if (s.Path is not null) parts.Add($"path '{s.Path}'");
        if (s.Sha256 is not null) parts.Add($"sha256 {s.Sha256}");
        if (s.Module is not null) parts.Add($"module '{s.Module}'");
        return parts.Count == 0 ? "" : " for " + string.Join(", ", parts);
    }

    /// <summary>The report with each finding an active suppression covers marked by the first one that does (config order).</summary>
    public InputReport Apply(InputReport report)
    {
        if (Active.Count == 0) return report;
        return report with
        {
            Artifacts = [.. report.Artifacts.Select(a => a.Findings.Count == 0 ? a : a with
            {
                Findings = [.. a.Findings.Select(f => f.Suppression is null && Active.FirstOrDefault(s => s.Matches(f, a)) is { } s ? f with { Suppression = s } : f)],
            })],
        };
    }
}
