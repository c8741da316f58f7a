using DriverAudit.Rules.Loading;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace DriverAudit.Rules.Yaml;

/// <summary>
/// What kind of YAML file is read: its limits and how messages name it. Rule files and <c>driveraudit.yaml</c>
/// are read by the same <see cref="YamlTreeReader"/>, so they refuse the same things in the same words.
/// </summary>
/// <param name="Singular">"a rule file": "a rule file may hold at most …".</param>
/// <param name="Plural">"rule files": "YAML aliases are not allowed in rule files".</param>
/// <param name="MaxChars">Refuse longer texts before parsing them.</param>
/// <param name="MaxDepth">Deeper nesting than any sensible file of the kind; bounds recursion on hostile input.</param>
public sealed record YamlFileKind(string Singular, string Plural, int MaxChars, int MaxDepth)
{
    /// <summary>The error for a text holding no document; null when an empty file is simply empty (the reader returns null).</summary>
    public string? EmptyMessage { get; init; }

    /// <summary>Ends the "more than one YAML document" error.</summary>
    public string SecondDocumentHint { get; init; } = "";

    public static YamlFileKind RuleFile { get; } = new("a rule file", "rule files", 256 * 1024, 64)
    {
        EmptyMessage = "the file holds no YAML document; expected one rule",
        SecondDocumentHint = "; write one rule per file",
    };
}

/// <summary>
/// The one YAML reader of the project: builds a position-keeping node tree from YamlDotNet's low-level event
/// parser. Nothing here instantiates types from the text: tags, anchors and aliases are refused outright (no
/// file of ours has a use for them, and aliases are the "billion laughs" vector), as are duplicate keys and
/// complex keys. Every problem is reported with its 1-based line and column.
/// </summary>
public static class YamlTreeReader
{
    /// <summary>A rule file's single document root, or null when the text could not be read as one.</summary>
    internal static YamlNode? Read(string text, ErrorSink errors) => Read(text, YamlFileKind.RuleFile, errors.Add);

    /// <summary>
    /// The single document's root node, or null when the text could not be read as one (or is empty and
    /// <paramref name="kind"/> allows that). Every problem goes to <paramref name="error"/>(line, column, message).
    /// </summary>
    public static YamlNode? Read(string text, YamlFileKind kind, Action<int, int, string> error)
    {
        var errors = new Errors(kind, error);
        if (text.Length > kind.MaxChars)
        {
            error(1, 1, $"the file is {text.Length} characters long; {kind.Singular} may hold at most {kind.MaxChars}");
            return null;
        }
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                if (kind.EmptyMessage is { } empty) error(1, 1, empty);
                return null;
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, errors, 0);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                error(Clamp(second.Start.Line), Clamp(second.Start.Column), "the file holds more than one YAML document" + kind.SecondDocumentHint);
                return null;
            }
            return root;
        }
        catch (TooDeepException deep)
        {
            error(deep.Line, deep.Column, $"nesting deeper than {kind.MaxDepth} levels");
            return null;
        }
        catch (YamlException ex)
        {
            error(Clamp(ex.Start.Line), Clamp(ex.Start.Column), "invalid YAML: " + Clean(ex.Message));
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException
                                   or OverflowException or IndexOutOfRangeException)
        {
            // YamlDotNet's scanner throws these on some malformed input (found by the fuzz property);
            // report them like syntax errors, at the last position the parser reached.
            var at = parser.Current?.Start;
            error(at is null ? 1 : Clamp(at.Value.Line), at is null ? 1 : Clamp(at.Value.Column), "invalid YAML: the parser could not read past this point");
            return null;
        }
    }

    /// <summary>The reader's error channel, with the kind the messages name.</summary>
    private sealed record Errors(YamlFileKind Kind, Action<int, int, string> Add);

    private static YamlNode ReadNode(IParser parser, Errors errors, int depth)
    {
        var evt = parser.Current ?? throw new YamlException("unexpected end of the document");
        int line = Clamp(evt.Start.Line), column = Clamp(evt.Start.Column);
        if (depth > errors.Kind.MaxDepth) throw new TooDeepException(line, column);

        switch (evt)
        {
            case AnchorAlias alias:
                parser.MoveNext();
                errors.Add(line, column, $"YAML aliases (*{alias.Value}) are not allowed in {errors.Kind.Plural}");
                return new YamlScalar(line, column, "", plain: true);

            case Scalar scalar:
                parser.MoveNext();
                CheckProperties(scalar, errors);
                return new YamlScalar(line, column, scalar.Value, scalar.Style == ScalarStyle.Plain);

            case SequenceStart start:
                {
                    parser.MoveNext();
                    CheckProperties(start, errors);
                    var items = new List<YamlNode>();
                    while (!parser.TryConsume<SequenceEnd>(out _))
                        items.Add(ReadNode(parser, errors, depth + 1));
                    return new YamlSequence(line, column, items);
                }

            case MappingStart start:
                {
                    parser.MoveNext();
                    CheckProperties(start, errors);
                    var entries = new List<KeyValuePair<YamlScalar, YamlNode>>();
                    var seen = new Dictionary<string, YamlScalar>(StringComparer.Ordinal);
                    while (!parser.TryConsume<MappingEnd>(out _))
                    {
                        var keyNode = ReadNode(parser, errors, depth + 1);
                        var value = ReadNode(parser, errors, depth + 1);
                        if (keyNode is not YamlScalar key)
                        {
                            errors.Add(keyNode.Line, keyNode.Column, "mapping keys must be plain strings");
                            continue;
                        }
                        if (seen.TryGetValue(key.Value, out var first))
                        {
                            errors.Add(key.Line, key.Column, $"duplicate key '{key.Value}' (first at line {first.Line}, column {first.Column})");
                            continue;
                        }
                        seen.Add(key.Value, key);
                        entries.Add(new(key, value));
                    }
                    return new YamlMapping(line, column, entries);
                }

            default:
                throw new YamlException(evt.Start, evt.End, $"unexpected {evt.GetType().Name}");
        }
    }

    private static void CheckProperties(NodeEvent node, Errors errors)
    {
        var where = errors.Kind.Plural;
        if (!node.Tag.IsEmpty && !node.Tag.IsNonSpecific)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), $"YAML type tags ({node.Tag.Value}) are not allowed in {where}");
        else if (!node.Tag.IsEmpty)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), $"YAML tags ('!') are not allowed in {where}");
        if (!node.Anchor.IsEmpty)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), $"YAML anchors (&{node.Anchor.Value}) are not allowed in {where}");
    }

    private static int Clamp(long value) => value < 1 ? 1 : value > int.MaxValue ? int.MaxValue : (int)value;

    /// <summary>YamlDotNet prefixes its messages with "(Line: x, Col: y, Idx: z) - (...): "; the error already says where.</summary>
    private static string Clean(string message)
    {
        int i = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && i >= 0 ? message[(i + 3)..] : message;
    }

    private sealed class TooDeepException(int line, int column) : Exception
    {
        public int Line { get; } = line;
        public int Column { get; } = column;
    }
}
