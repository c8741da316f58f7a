using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using DriverAudit.Rules.Engine;
using DriverAudit.Scanner.Engine;

namespace DriverAudit.Scanner.Reporting.Sarif;

/// <summary>
/// Streams a SARIF 2.1.0 log: results are written as inputs arrive; artifacts and notifications are
/// spooled to temporary files and copied in at the end. Memory stays flat with the number of inputs.
/// The profile is GitHub's: relative URIs under %SRCROOT%, region.startLine 1 as a display anchor,
/// fingerprints, at most 25,000 results.
/// </summary>
public sealed class SarifWriter : IScanSink
{
    public const string SchemaUri = "https://json.schemastore.org/sarif-2.1.0.json";
    public const string SrcRoot = "%SRCROOT%";
    public const int MaxResults = 25_000;

    private readonly Stream _out;
    private readonly ReportOutput _output;
    private readonly string _category;
    private readonly int _maxResults;
    private readonly Utf8JsonWriter _json;
    private readonly Spool _artifacts = new();
    private readonly Spool _notifications = new();
    private Dictionary<string, int> _ruleIndex = new(StringComparer.Ordinal);
    private ScanContext? _context;
    private int _artifactCount;
    private int _resultCount;
    private int _droppedResults;
    private readonly HashSet<string> _seenFingerprints = new(StringComparer.Ordinal);

    /// <param name="output">Where the log goes (see <see cref="ReportOutput"/>); committed by <see cref="Complete"/>, owned by the caller.</param>
    /// <param name="category">runs[].automationDetails.id, e.g. "driveraudit/".</param>
    public SarifWriter(ReportOutput output, string category = "driveraudit/", int maxResults = MaxResults)
    {
        _output = output;
        _out = output.Stream;
        _category = category;
        _maxResults = maxResults;
        // Compact: GitHub takes at most 10 MB gzipped per upload, and spooled values are copied byte for byte.
        // Relaxed escaping: apostrophes and non-ASCII names stay readable; the log is never embedded in HTML.
        _json = new Utf8JsonWriter(_out, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    public void Begin(ScanContext context)
    {
        _context = context;
        _ruleIndex = context.Rules.Select((r, i) => (r.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);

        _json.WriteStartObject();
        _json.WriteString("$schema", SchemaUri);
        _json.WriteString("version", "2.1.0");
        _json.WriteStartArray("runs");
        _json.WriteStartObject();

        _json.WritePropertyName("tool");
        var driver = new SarifToolComponent
        {
            Name = ToolInfo.Name,
            SemanticVersion = ToolInfo.SemanticVersion,
            InformationUri = ToolInfo.InformationUri,
            Rules = context.Rules.Select(r => SarifRules.Describe(r, null)).ToList(),
            Notifications = SarifRules.Notifications(),
        };
        JsonSerializer.Serialize(_json, new SarifTool(driver), SarifJsonContext.Default.SarifTool);

        _json.WriteStartObject("automationDetails");
        _json.WriteString("id", _category);
        _json.WriteEndObject();

        _json.WriteStartObject("originalUriBaseIds");
        _json.WriteStartObject(SrcRoot);
        _json.WriteString("uri", context.SourceRootUri);
        _json.WriteEndObject();
        _json.WriteEndObject();

        if (GitProvenance.Find(context.SourceRoot) is { } git)
        {
            _json.WriteStartArray("versionControlProvenance");
            _json.WriteStartObject();
            _json.WriteString("repositoryUri", git.RepositoryUri);
            if (git.RevisionId is not null) _json.WriteString("revisionId", git.RevisionId);
            if (git.Branch is not null) _json.WriteString("branch", git.Branch);
            _json.WriteStartObject("mappedTo");
            _json.WriteString("uriBaseId", SrcRoot);
            _json.WriteEndObject();
            _json.WriteEndObject();
            _json.WriteEndArray();
        }

        _json.WriteString("columnKind", "utf16CodeUnits");
        if (context.Host is { } host)
        {
            // Provenance for fleet merges: which machine these results come from.
            _json.WriteStartObject("properties");
            _json.WriteString("host", host);
            _json.WriteEndObject();
        }
        _json.WriteStartArray("results");
    }

    public void Add(InputReport report)
    {
        var baseIndex = _artifactCount;
        foreach (var artifact in report.Artifacts)
        {
            var index = _artifactCount++;
            _artifacts.Write(new SarifArtifact
            {
                Location = Location(artifact.Uri, null),
                ParentIndex = artifact.ParentLocalIndex is int p ? baseIndex + p : null,
                Length = artifact.Length,
                Roles = ["analysisTarget"],
                Hashes = artifact.Sha256 is null ? null : new Dictionary<string, string> { ["sha-256"] = artifact.Sha256 },
                Description = artifact.ModuleName is null ? null : new SarifMessage($"Module {artifact.ModuleName} loaded at 0x{artifact.ModuleBase:x} ({artifact.ModulePath})."),
                Properties = artifact.ModuleName is null ? null : new SortedDictionary<string, object>(StringComparer.Ordinal)
                {
                    ["moduleName"] = artifact.ModuleName,
                    ["moduleBase"] = $"0x{artifact.ModuleBase:x}", // hex string: kernel addresses exceed 2^53
                    ["modulePath"] = artifact.ModulePath ?? "",
                    ["capture"] = artifact.Capture ?? "image",
                },
            }, SarifJsonContext.Default.SarifArtifact);

            foreach (var finding in artifact.Findings) WriteResult(finding, artifact, index);
            foreach (var n in artifact.Notifications) WriteNotification(n);
        }
        foreach (var n in report.Notifications) WriteNotification(n);
    }

    private void WriteResult(Finding finding, ArtifactReport artifact, int artifactIndex)
    {
        // Seen even when dropped past the limit: it must not come back as "absent".
        if (finding.BaselineState is not null) _seenFingerprints.Add(finding.Fingerprint);
        if (_resultCount >= _maxResults)
        {
            _droppedResults++;
            return;
        }
        _resultCount++;

        var logical = new List<SarifLogicalLocation>();
        if (artifact.ModuleName is not null)
            logical.Add(new SarifLogicalLocation { Name = artifact.ModuleName, FullyQualifiedName = artifact.ModuleName, Kind = "module" });
        logical.Add(new SarifLogicalLocation
        {
            Name = finding.Anchor.Key,
            FullyQualifiedName = artifact.ModuleName is null ? finding.Anchor.Key : $"{artifact.ModuleName}:{finding.Anchor.Key}",
            Kind = LogicalKind(finding.Anchor.Kind),
        });

        var properties = new SortedDictionary<string, object>(StringComparer.Ordinal)
        {
            ["anchorKind"] = finding.Anchor.Kind,
            ["anchor"] = finding.Anchor.Key,
        };
        if (artifact.ModuleName is not null)
        {
            properties["moduleName"] = artifact.ModuleName;
            properties["moduleBase"] = $"0x{artifact.ModuleBase:x}";
            if (artifact.Capture is not null) properties["capture"] = artifact.Capture;
        }
        if (_context?.Host is { } host) properties["hosts"] = new[] { host }; // a merged log lists every host

        var result = new SarifResult
        {
            RuleId = finding.Rule.Id,
            RuleIndex = _ruleIndex.TryGetValue(finding.Rule.Id, out var ri) ? ri : -1,
            Level = SarifRules.LevelName(finding.Level),
            Message = new SarifMessage(finding.Message),
            Locations =
            [
                new SarifLocation
                {
                    PhysicalLocation = new SarifPhysicalLocation
                    {
                        ArtifactLocation = Location(artifact.Uri, artifactIndex),
                        // Binaries have no lines; GitHub needs a region to display the alert.
                        Region = new SarifRegion(1),
                        Address = SiteAddress(finding),
                    },
                    LogicalLocations = logical,
                },
            ],
            PartialFingerprints = new Dictionary<string, string> { ["primaryLocationLineHash"] = finding.Fingerprint },
            BaselineState = finding.BaselineState,
            Properties = properties,
        };
        JsonSerializer.Serialize(_json, result, SarifJsonContext.Default.SarifResult);
        if (_json.BytesPending > 1 << 16) _json.Flush();
    }

    private void WriteNotification(Notification n)
    {
        _notifications.Write(new SarifNotification
        {
            Level = SarifRules.LevelName(n.Level),
            Message = new SarifMessage(n.Message),
            Descriptor = new SarifDescriptorReference
            {
                Id = n.Code,
                Index = IndexOfNotification(n.Code),
            },
            AssociatedRule = n.RuleId is null ? null : new SarifDescriptorReference
            {
                Id = n.RuleId,
                Index = _ruleIndex.TryGetValue(n.RuleId, out var ri) ? ri : null,
            },
            Locations = n.Uri is null ? null :
            [
                new SarifLocation { PhysicalLocation = new SarifPhysicalLocation { ArtifactLocation = Location(n.Uri, null) } },
            ],
        }, SarifJsonContext.Default.SarifNotification);
    }

    public void Complete(ScanSummary summary)
    {
        if (_context is null) throw new InvalidOperationException("Begin was not called.");
        if (_droppedResults > 0)
            WriteNotification(new Notification(NotificationCodes.ResultsTruncated, NotificationLevel.Warning,
                $"{_droppedResults} results were left out: GitHub code scanning accepts at most {_maxResults} results per run. Narrow the scan or raise --fail-on thresholds."));

        if (_context.Baseline is { } baseline) WriteAbsentResults(baseline);
        _json.WriteEndArray(); // results

        if (_context.Baseline?.Guid is { } baselineGuid) _json.WriteString("baselineGuid", baselineGuid);

        _json.WriteStartArray("artifacts");
        _artifacts.CopyTo(_json);
        _json.WriteEndArray();

        _json.WriteStartArray("invocations");
        _json.WriteStartObject();
        _json.WriteBoolean("executionSuccessful", summary.ExitCode is 0 or 1);
        _json.WriteNumber("exitCode", summary.ExitCode);
        _json.WriteString("startTimeUtc", _context.StartTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        _json.WriteString("endTimeUtc", summary.EndTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        _json.WriteStartArray("toolExecutionNotifications");
        _notifications.CopyTo(_json);
        _json.WriteEndArray();
        _json.WriteEndObject();
        _json.WriteEndArray();

        _json.WriteEndObject(); // run
        _json.WriteEndArray(); // runs
        _json.WriteEndObject();
        _json.Flush();
        _json.Dispose(); // before the rename: a disposed writer must not flush into a closed file
        _out.Write("\n"u8);
        _out.Flush();
        _output.Commit();
    }

    /// <summary>
    /// The baseline's results that this scan did not find again, copied with baselineState "absent".
    /// Their artifact indexes belong to the old log, so only the URIs are kept.
    /// </summary>
    private void WriteAbsentResults(Baseline baseline)
    {
        using var doc = Baseline.Parse(baseline.Path);
        foreach (var run in doc.RootElement.GetProperty("runs").EnumerateArray())
        {
            if (!run.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array) continue;
            foreach (var old in results.EnumerateArray())
            {
                if (Baseline.Fingerprint(old) is not { } fp || !_seenFingerprints.Add(fp)) continue;
                if (_resultCount >= _maxResults) { _droppedResults++; continue; }
                _resultCount++;
                var node = System.Text.Json.Nodes.JsonNode.Parse(old.GetRawText())!.AsObject();
                node["baselineState"] = "absent";
                var ruleId = node["ruleId"]?.GetValue<string>();
                if (ruleId is not null && _ruleIndex.TryGetValue(ruleId, out var ri)) node["ruleIndex"] = ri; else node.Remove("ruleIndex");
                if (node["locations"] is System.Text.Json.Nodes.JsonArray locations)
                    foreach (var loc in locations)
                        (loc?["physicalLocation"]?["artifactLocation"] as System.Text.Json.Nodes.JsonObject)?.Remove("index");
                node.WriteTo(_json);
            }
        }
    }

    /// <summary>Call and instruction findings know their RVA; the region stays the display anchor.</summary>
    private static SarifAddress? SiteAddress(Finding finding) =>
        finding.Anchor.Values.TryGetValue("site", out var hex) && hex.StartsWith("0x", StringComparison.Ordinal)
        && long.TryParse(hex.AsSpan(2), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var rva)
            ? new SarifAddress { RelativeAddress = rva, Kind = "instruction" }
            : null;

    private static int IndexOfNotification(string code)
    {
        var all = NotificationCodes.All;
        for (var i = 0; i < all.Count; i++) if (all[i].Id == code) return i;
        return -1;
    }

    private static SarifArtifactLocation Location(string uri, int? index) =>
        Uri.TryCreate(uri, UriKind.Absolute, out _)
            ? new SarifArtifactLocation { Uri = uri, Index = index } // outside the source root: absolute, no base
            : new SarifArtifactLocation { Uri = EscapeRelative(uri), UriBaseId = SrcRoot, Index = index };

    /// <summary>A relative path as a URI reference: each segment percent-escaped, slashes kept.</summary>
    internal static string EscapeRelative(string path) =>
        string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    private static string LogicalKind(string anchorKind) => anchorKind switch
    {
        "import" or "export" or "call" => "function",
        "section" => "member",
        _ => "module",
    };

    public void Dispose()
    {
        _json.Dispose();
        _artifacts.Dispose();
        _notifications.Dispose();
    }

    /// <summary>A temporary file of JSON values, one per line, copied into the log at the end.</summary>
    private sealed class Spool : IDisposable
    {
        private FileStream? _stream;
        private Utf8JsonWriter? _writer;

        public void Write<T>(T value, JsonTypeInfo<T> type)
        {
            if (_stream is null)
            {
                _stream = TempFiles.CreateScratch();
                _writer = new Utf8JsonWriter(_stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            }
            JsonSerializer.Serialize(_writer!, value, type);
            _writer!.Flush();
            _writer.Reset();
            _stream.WriteByte((byte)'\n');
        }

        public void CopyTo(Utf8JsonWriter json)
        {
            if (_stream is null) return;
            _writer!.Flush();
            _stream.Position = 0;
            using var reader = new StreamReader(_stream, Encoding.UTF8, false, 1 << 16, leaveOpen: true);
            while (reader.ReadLine() is { } line)
                if (line.Length > 0) json.WriteRawValue(line, skipInputValidation: true);
        }

        public void Dispose()
        {
            _writer?.Dispose();
            _stream?.Dispose();
        }
    }
}
