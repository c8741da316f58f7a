using System.Globalization;
using DriverAudit.Rules.Yaml;
using DriverAudit.Scanner.Engine;

namespace DriverAudit.Scanner.Configuration;

/// <summary>
/// The <c>suppressions:</c> section of <c>driveraudit.yaml</c>: a list of accepted risks, each a rule, a scope (path glob,
/// SHA-256 and/or dump module name; all given must match), a justification and an optional expiry date.
/// </summary>
internal static class ConfigSuppressions
{
    private static readonly string[] Keys = ["rule", "path", "sha256", "module", "justification", "expires"];

    /// <param name="configPath">The config file's full path (the suppression's location until the caller makes it relative).</param>
    /// <param name="error">Records a problem at a node; reading goes on.</param>
    public static IReadOnlyList<Suppression> Read(YamlNode node, string configPath, Action<YamlNode, string> error)
    {
        var list = new List<Suppression>();
        if (node is YamlScalar { IsNull: true }) return list;
        if (node is not YamlSequence items)
        {
            error(node, "'suppressions' must be a list of entries, e.g. - {rule: DA1003, path: \"legacy/**\", justification: \"...\"}");
            return list;
        }
        foreach (var item in items.Items)
        {
            if (item is not YamlMapping map)
            {
                error(item, "each suppression must be a mapping with rule, justification and path, sha256 or module");
                continue;
            }
            var values = new Dictionary<string, (string Value, YamlNode Node)>(StringComparer.Ordinal);
            var ok = true;
            var present = new HashSet<string>(StringComparer.Ordinal); // a key given but invalid is reported once, not also as missing
            foreach (var (k, v) in map.Entries)
            {
                var key = k.Value;
                if (!Keys.Contains(key))
                {
                    error(k, $"unknown suppression key '{key}'; expected one of: {string.Join(", ", Keys)}");
                    ok = false;
                }
                else if (!present.Add(key))
                {
                    error(k, $"suppression key '{key}' is given twice");
                    ok = false;
                }
                else if (v is not YamlScalar { Value: var text } || text.Trim().Length == 0)
                {
                    error(v, $"suppression '{key}' must be a non-empty string");
                    ok = false;
                }
                else values[key] = (text.Trim(), v);
            }
            if (!present.Contains("rule")) { error(item, "a suppression needs 'rule' (a rule id or name; * and ? are wildcards)"); ok = false; }
            if (!present.Contains("justification")) { error(item, "a suppression needs 'justification': why the risk is accepted (it is shown on every suppressed result)"); ok = false; }
            if (!present.Contains("path") && !present.Contains("sha256") && !present.Contains("module"))
            {
                error(item, "a suppression needs a scope: 'path' (a glob), 'sha256' or 'module' (to accept a rule everywhere, write path: \"**\", or disable the rule)");
                ok = false;
            }
            string? sha256 = null;
            if (values.TryGetValue("sha256", out var h))
            {
                sha256 = h.Value.ToLowerInvariant();
                if (sha256.Length != 64 || !sha256.All(char.IsAsciiHexDigit)) { error(h.Node, $"'sha256' must be 64 hex digits, found '{h.Value}'"); ok = false; }
            }
            DateOnly? expires = null;
            if (values.TryGetValue("expires", out var e))
            {
                if (DateOnly.TryParseExact(e.Value, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)) expires = d;
                else { error(e.Node, $"'expires' must be a date YYYY-MM-DD (the last day the suppression applies), found '{e.Value}'"); ok = false; }
            }
            if (!ok) continue;
            list.Add(new Suppression
            {
                Rule = values["rule"].Value,
                Path = values.TryGetValue("path", out var p) ? p.Value : null,
                Sha256 = sha256,
                Module = values.TryGetValue("module", out var m) ? m.Value : null,
                Justification = values["justification"].Value,
                Expires = expires,
                ConfigUri = configPath,
                Line = item.Line,
            });
        }
        return list;
    }

    /// <summary>
    /// The run's suppressions: located relative to the source root (as SARIF URIs are), split by the run's UTC date.
    /// An entry whose rule matches no loaded rule is a warning (it suppresses nothing; a typo must not go unnoticed).
    /// </summary>
    public static SuppressionSet ForRun(ConfigFile settings, Inputs.SourceRoot root, DriverAudit.Rules.Engine.RuleSet loaded, DateTimeOffset start, TextWriter error)
    {
        if (settings.Suppressions.Count == 0) return SuppressionSet.None;
        foreach (var s in settings.Suppressions)
            if (!loaded.Rules.Any(r => Rules.Patterns.Wildcard.IsMatch(s.Rule, r.Id, ignoreCase: true) || Rules.Patterns.Wildcard.IsMatch(s.Rule, r.Name, ignoreCase: true)))
                error.WriteLine($"{s.ConfigUri}:{s.Line}: warning: the suppression's rule '{s.Rule}' matches no loaded rule; it suppresses nothing.");
        return new SuppressionSet([.. settings.Suppressions.Select(s => s with { ConfigUri = root.UriFor(s.ConfigUri) })], DateOnly.FromDateTime(start.UtcDateTime));
    }
}
