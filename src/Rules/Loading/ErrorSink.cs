using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Yaml;

namespace DriverAudit.Rules.Loading;

/// <summary>Collects every error of one source file; loading goes on after an error so all are reported.</summary>
internal sealed class ErrorSink(string file)
{
    private readonly List<RuleError> _errors = [];

    public string File { get; } = file;
    public IReadOnlyList<RuleError> Errors => _errors;
    public int Count => _errors.Count;

    public void Add(int line, int column, string message) => _errors.Add(new RuleError(File, line, column, message));
    public void Add(YamlNode at, string message) => Add(at.Line, at.Column, message);
}
