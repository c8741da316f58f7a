using DriverAudit.Rules.Loading;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace DriverAudit.Rules.Yaml;

/// <summary>
/// Builds a position-keeping node tree from YamlDotNet's low-level event parser. Nothing here
/// instantiates types from the text: tags, anchors and aliases are refused outright (a rule file has no
/// use for them, and aliases are the "billion laughs" vector), as are duplicate keys and complex keys.
/// </summary>
internal static class YamlTreeReader
{
    /// <summary>Deeper nesting than any sensible rule; bounds recursion on hostile input.</summary>
    public const int MaxDepth = 64;

    /// <summary>A rule file is a few kilobytes; refuse megabytes before parsing them.</summary>
    public const int MaxChars = 256 * 1024;

    /// <summary>Returns the single document's root node, or null when the text could not be read as one.</summary>
    public static YamlNode? Read(string text, ErrorSink errors)
    {
        if (text.Length > MaxChars)
        {
            errors.Add(1, 1, $"the file is {text.Length} characters long; a rule file may hold at most {MaxChars}");
            return null;
        }
        var parser = new Parser(new StringReader(text));
        try
        {
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                errors.Add(1, 1, "the file holds no YAML document; expected one rule");
                return null;
            }
            parser.Consume<DocumentStart>();
            var root = ReadNode(parser, errors, 0);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                errors.Add(Clamp(second.Start.Line), Clamp(second.Start.Column), "the file holds more than one YAML document; write one rule per file");
                return null;
            }
            return root;
        }
        catch (TooDeepException deep)
        {
            errors.Add(deep.Line, deep.Column, $"nesting deeper than {MaxDepth} levels");
            return null;
        }
        catch (YamlException ex)
        {
            errors.Add(Clamp(ex.Start.Line), Clamp(ex.Start.Column), "invalid YAML: " + Clean(ex.Message));
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException
                                   or OverflowException or IndexOutOfRangeException)
        {
            // YamlDotNet's scanner throws these on some malformed input (found by the fuzz property);
            // report them like syntax errors, at the last position the parser reached.
            var at = parser.Current?.Start;
            errors.Add(at is null ? 1 : Clamp(at.Value.Line), at is null ? 1 : Clamp(at.Value.Column), "invalid YAML: the parser could not read past this point");
            return null;
        }
    }

    private static YamlNode ReadNode(IParser parser, ErrorSink errors, int depth)
    {
        var evt = parser.Current ?? throw new YamlException("unexpected end of the document");
        int line = Clamp(evt.Start.Line), column = Clamp(evt.Start.Column);
        if (depth > MaxDepth) throw new TooDeepException(line, column);

        switch (evt)
        {
            case AnchorAlias alias:
                parser.MoveNext();
                errors.Add(line, column, $"YAML aliases (*{alias.Value}) are not allowed in rule files");
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

    private static void CheckProperties(NodeEvent node, ErrorSink errors)
    {
        if (!node.Tag.IsEmpty && !node.Tag.IsNonSpecific)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), $"YAML type tags ({node.Tag.Value}) are not allowed in rule files");
        else if (!node.Tag.IsEmpty)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), "YAML tags ('!') are not allowed in rule files");
        if (!node.Anchor.IsEmpty)
            errors.Add(Clamp(node.Start.Line), Clamp(node.Start.Column), $"YAML anchors (&{node.Anchor.Value}) are not allowed in rule files");
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
