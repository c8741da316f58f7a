using System.Text;
using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Predicates;

namespace DriverAudit.Rules.Messages;

/// <summary>
/// A finding message with <c>{placeholders}</c>, parsed once at load. <c>{{</c> and <c>}}</c> write literal
/// braces. Which placeholders a rule may use depends on the anchors it can report (checked at load), so
/// rendering never meets a missing value.
/// </summary>
internal sealed class MessageTemplate
{
    /// <summary>Placeholder → the anchor kinds that provide it (None: always available; null: reserved, refused).</summary>
    private static readonly Dictionary<string, AnchorKind?> Known = new(StringComparer.Ordinal)
    {
        ["artifact"] = AnchorKind.None,
        ["value"] = AnchorKind.None,
        ["module"] = AnchorKind.Import | AnchorKind.Call,
        ["import"] = AnchorKind.Import | AnchorKind.Call,
        ["export"] = AnchorKind.Export,
        ["section"] = AnchorKind.Section | AnchorKind.String,
        ["api"] = AnchorKind.Call,
        ["tag"] = AnchorKind.Call,
        ["pool-type"] = AnchorKind.Call,
        ["via"] = AnchorKind.Call,
        ["site"] = AnchorKind.Call | AnchorKind.Instruction,
        ["function"] = AnchorKind.Call | AnchorKind.Instruction,
        ["mnemonic"] = AnchorKind.Instruction,
        ["count"] = AnchorKind.Instruction,
        ["string"] = AnchorKind.String,
        ["signer"] = AnchorKind.Signature,
    };

    public static IEnumerable<string> KnownNames => Known.Keys;

    private readonly (string Text, bool IsPlaceholder)[] _parts;

    private MessageTemplate((string, bool)[] parts, string text)
    {
        _parts = parts;
        Text = text;
    }

    public string Text { get; }

    public IEnumerable<string> Placeholders => _parts.Where(p => p.IsPlaceholder).Select(p => p.Text);

    /// <summary>Parses the template; returns null and the problems when it is malformed or names unknown placeholders.</summary>
    public static MessageTemplate? Parse(string text, List<string> problems)
    {
        var parts = new List<(string, bool)>();
        var literal = new StringBuilder();
        int before = problems.Count;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if ((c == '{' || c == '}') && i + 1 < text.Length && text[i + 1] == c)
            {
                literal.Append(c);
                i++;
            }
            else if (c == '{')
            {
                int close = text.IndexOf('}', i + 1);
                if (close < 0) { problems.Add($"message has an unclosed '{{' at offset {i}; write '{{{{' for a literal brace"); break; }
                string name = text[(i + 1)..close];
                if (!Known.ContainsKey(name))
                    problems.Add($"unknown placeholder {{{name}}} in message (known: {string.Join(", ", Known.Keys.Select(k => "{" + k + "}"))})");
                if (literal.Length > 0) { parts.Add((literal.ToString(), false)); literal.Clear(); }
                parts.Add((name, true));
                i = close;
            }
            else if (c == '}')
            {
                problems.Add($"message has a stray '}}' at offset {i}; write '}}}}' for a literal brace");
            }
            else
            {
                literal.Append(c);
            }
        }
        if (literal.Length > 0) parts.Add((literal.ToString(), false));
        return problems.Count > before ? null : new MessageTemplate([.. parts], text);
    }

    /// <summary>Placeholders this template uses that anchors of <paramref name="reported"/> kinds do not all provide.</summary>
    public IEnumerable<string> Unavailable(AnchorKind reported)
    {
        foreach (var name in Placeholders.Distinct())
        {
            var provider = Known[name];
            if (provider is null)
                yield return $"placeholder {{{name}}} is not provided by any feature this version supports";
            else if (provider != AnchorKind.None && (reported & ~provider.Value) != 0)
                yield return $"placeholder {{{name}}} is only known for {Describe(provider.Value)} anchors, but this rule can report on {Describe(reported & ~provider.Value)}";
        }
    }

    public string Render(IReadOnlyDictionary<string, string> values)
    {
        var sb = new StringBuilder(Text.Length + 64);
        foreach (var (text, isPlaceholder) in _parts)
            sb.Append(isPlaceholder ? values.GetValueOrDefault(text, "") : text);
        return sb.ToString();
    }

    private static string Describe(AnchorKind kinds) =>
        string.Join(" or ", Enum.GetValues<AnchorKind>().Where(k => k != AnchorKind.None && kinds.HasFlag(k)).Select(k => k.ToString().ToLowerInvariant()));
}
