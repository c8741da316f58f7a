using System.Globalization;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>
/// Typed reads of YAML values. Each returns null (and records an error at the node) when the value has
/// the wrong type, so callers can carry on and report every error in one pass.
/// </summary>
internal sealed class NodeReader(ErrorSink errors)
{
    public ErrorSink Errors { get; } = errors;

    public string? String(YamlNode node, string what)
    {
        if (node is YamlScalar { IsNull: false } s)
        {
            if (s.Value.Length == 0) { Errors.Add(node, $"{what} must not be empty"); return null; }
            return s.Value;
        }
        Errors.Add(node, $"{what} must be a string, found {node.Describe()}");
        return null;
    }

    public bool? Bool(YamlNode node, string what)
    {
        if (node is YamlScalar { Plain: true, Value: "true" }) return true;
        if (node is YamlScalar { Plain: true, Value: "false" }) return false;
        Errors.Add(node, $"{what} must be true or false, found {node.Describe()}");
        return null;
    }

    /// <summary>Decimal or 0x-prefixed hexadecimal, written plain, within [min, max].</summary>
    public long? Integer(YamlNode node, string what, long min, long max)
    {
        if (node is YamlScalar { Plain: true } s && TryParseInteger(s.Value, out long value))
        {
            if (value < min || value > max)
            {
                Errors.Add(node, $"{what} must be between {min} and {max}, found {s.Value}");
                return null;
            }
            return value;
        }
        Errors.Add(node, $"{what} must be an integer, found {node.Describe()}");
        return null;
    }

    public double? Number(YamlNode node, string what)
    {
        if (node is YamlScalar { Plain: true } s
            && double.TryParse(s.Value, NumberStyles.AllowDecimalPoint | NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out double d)
            && double.IsFinite(d))
            return d;
        Errors.Add(node, $"{what} must be a number, found {node.Describe()}");
        return null;
    }

    public YamlMapping? Mapping(YamlNode node, string what)
    {
        if (node is YamlMapping m) return m;
        Errors.Add(node, $"{what} must be a mapping, found {node.Describe()}");
        return null;
    }

    public YamlSequence? Sequence(YamlNode node, string what)
    {
        if (node is YamlSequence s) return s;
        Errors.Add(node, $"{what} must be a list, found {node.Describe()}");
        return null;
    }

    /// <summary>A single string or a list of strings (<c>machine: x64</c> or <c>machine: [x64, x86]</c>).</summary>
    public List<(YamlNode Node, string Value)>? Strings(YamlNode node, string what)
    {
        var result = new List<(YamlNode, string)>();
        if (node is YamlSequence seq)
        {
            if (seq.Items.Count == 0) { Errors.Add(node, $"{what} must not be an empty list"); return null; }
            bool ok = true;
            foreach (var item in seq.Items)
            {
                var s = String(item, $"each item of {what}");
                if (s is null) ok = false; else result.Add((item, s));
            }
            return ok ? result : null;
        }
        var single = String(node, what);
        if (single is null) return null;
        result.Add((node, single));
        return result;
    }

    /// <summary>Reports keys outside <paramref name="allowed"/>; returns false when there was one.</summary>
    public bool OnlyKeys(YamlMapping map, string where, IReadOnlyCollection<string> allowed)
    {
        bool ok = true;
        foreach (var (key, _) in map.Entries)
        {
            if (allowed.Contains(key.Value)) continue;
            Errors.Add(key, $"unknown key '{key.Value}' in {where} (expected {string.Join(", ", allowed)})");
            ok = false;
        }
        return ok;
    }

    public static bool TryParseInteger(string text, out long value)
    {
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            return long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value) && value >= 0;
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }
}
