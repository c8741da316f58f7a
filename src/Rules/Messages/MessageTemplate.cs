using System.Text;
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
    private static readonly Dictionary<string, AnchorKinds?> Known = new(StringComparer.Ordinal)
    {
        ["artifact"] = AnchorKinds.None,
        ["value"] = AnchorKinds.None,
        ["module"] = AnchorKinds.Import | AnchorKinds.Call,
        ["import"] = AnchorKinds.Import | AnchorKinds.Call,
        ["export"] = AnchorKinds.Export,
        ["section"] = AnchorKinds.Section | AnchorKinds.String,
        ["api"] = AnchorKinds.Call,
        ["tag"] = AnchorKinds.Call,
        ["pool-type"] = AnchorKinds.Call,
        ["via"] = AnchorKinds.Call,
        ["site"] = AnchorKinds.Call | AnchorKinds.Instruction,
        ["function"] = AnchorKinds.Call | AnchorKinds.Instruction,
        ["mnemonic"] = AnchorKinds.Instruction,
        ["count"] = AnchorKinds.Instruction,
        ["string"] = AnchorKinds.String,
        ["signer"] = AnchorKinds.Signature,
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
    public IEnumerable<string> Unavailable(AnchorKinds reported)
    {
        foreach (var name in Placeholders.Distinct())
        {
            var provider = Known[name];
            if (provider is null)
                yield return $"placeholder {{{name}}} is not provided by any feature this version supports";
            else if (provider != AnchorKinds.None && (reported & ~provider.Value) != 0)
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

    private static string Describe(AnchorKinds kinds) =>
        string.Join(" or ", Enum.GetValues<AnchorKinds>().Where(k => k != AnchorKinds.None && kinds.HasFlag(k)).Select(k => k.ToString().ToLowerInvariant()));
}
