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
internal sealed class SarifWriter : IScanSink
{
    public const string SchemaUri = "https://json.schemastore.org/sarif-2.1.0.json";
    public const string SrcRoot = "%SRCROOT%";
    public const int MaxResults = 25_000;
    public const int MaxResultsPerRulePerImage = 100;

    /// <summary>
    /// automationDetails.id for <c>--category NAME</c>: <c>driveraudit/NAME/</c>. GitHub takes everything before the last
    /// <c>/</c> as the category, so the trailing slash keeps x64 and x86 (or matrix) uploads from replacing each other.
    /// </summary>
    public static string CategoryId(string? name)
    {
        var n = (name ?? "").Trim().Trim('/');
        if (n.StartsWith("driveraudit/", StringComparison.Ordinal)) n = n["driveraudit/".Length..].Trim('/');
        if (n is "driveraudit") n = "";
        return n.Length == 0 ? "driveraudit/" : $"driveraudit/{n}/";
    }

    private readonly Stream _out;
    private readonly ReportOutput _output;
    private readonly string _category;
    private readonly int _maxResults;
    private readonly Utf8JsonWriter _json;
    private readonly Spool _artifacts = new();
    private readonly Spool _notifications = new();
    private Dictionary<string, int> _ruleIndex = new(StringComparer.Ordinal);
    private ScanContext? _context;
    private readonly bool _includeAbsent;
    private readonly bool _includeSuppressed;
    private int _suppressedLeftOut;
    private readonly int _maxPerRulePerImage;
    // Results wait in spools by priority: per level (error, warning, note) the first result of each artifact at that
    // level, then the others; then suppressed results; absent baseline results last. The cap is applied when they are copied in.
    private readonly Spool[] _results = [new(), new(), new(), new(), new(), new(), new(), new()];
    private const int SuppressedSpool = 6;
    private int _artifactCount;
    private int _cappedResults;
    private readonly SortedSet<string> _cappedRules = new(StringComparer.Ordinal);
    private int _cappedImages;
    private readonly HashSet<string> _seenFingerprints = new(StringComparer.Ordinal);

    /// <param name="output">Where the log goes (see <see cref="ReportOutput"/>); committed by <see cref="Complete"/>, owned by the caller.</param>
    /// <param name="category">runs[].automationDetails.id, e.g. "driveraudit/" or "driveraudit/x64/" (see <see cref="CategoryId"/>).</param>
    /// <param name="includeAbsent">Keep the baseline's results not found again (baselineState absent). GitHub ignores
    /// baselineState, so by default they are left out: uploaded, they would be live alerts for fixed problems.</param>
    /// <param name="maxPerRulePerImage">Results of one rule in one image beyond this become one result saying how many more.</param>
    /// <param name="includeSuppressed">Keep results the config file suppresses, with SARIF <c>suppressions</c>. GitHub code scanning
    /// does not read <c>suppressions</c> and would show them as open alerts, so by default they are left out (and counted).</param>
    public SarifWriter(ReportOutput output, string category = "driveraudit/", int maxResults = MaxResults, bool includeAbsent = false,
        int maxPerRulePerImage = MaxResultsPerRulePerImage, bool includeSuppressed = false)
    {
        _includeAbsent = includeAbsent;
        _includeSuppressed = includeSuppressed;
        _maxPerRulePerImage = Math.Max(1, maxPerRulePerImage);
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

            var perRule = new Dictionary<string, int>(StringComparer.Ordinal);
            var firstAtLevel = new bool[3];
            foreach (var finding in artifact.Findings)
            {
                // Seen even when capped or dropped: it must not come back as "absent".
                if (finding.BaselineState is not null) _seenFingerprints.Add(finding.Fingerprint);
                if (finding.Suppression is not null && !_includeSuppressed)
                {
                    _suppressedLeftOut++;
                    continue;
                }
                // Suppressed and live results of a rule are capped apart, so the summary result says which it stands for.
                var key = finding.Suppression is null ? finding.Rule.Id : finding.Rule.Id + "\0s";
                var n = perRule[key] = perRule.GetValueOrDefault(key) + 1;
                if (n > _maxPerRulePerImage) continue;
                if (finding.Suppression is not null)
                {
                    WriteResult(finding, artifact, index, SuppressedSpool);
                    continue;
                }
                var slot = LevelSlot(finding.Level);
                WriteResult(finding, artifact, index, firstAtLevel[slot] ? 2 * slot + 1 : 2 * slot);
                firstAtLevel[slot] = true;
            }
            var cappedHere = false;
            foreach (var (key, count) in perRule.Where(kv => kv.Value > _maxPerRulePerImage).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                var suppressed = key.EndsWith("\0s", StringComparison.Ordinal);
                var ruleId = suppressed ? key[..^2] : key;
                var sample = artifact.Findings.First(f => f.Rule.Id == ruleId && (f.Suppression is not null) == suppressed);
                var more = count - _maxPerRulePerImage;
                _cappedResults += more;
                _cappedRules.Add(ruleId);
                cappedHere = true;
                WriteResult(MoreResults(sample, artifact, more), artifact, index, suppressed ? SuppressedSpool : 2 * LevelSlot(sample.Level) + 1);
            }
            if (cappedHere) _cappedImages++;
            foreach (var n in artifact.Notifications) WriteNotification(n);
        }
        foreach (var n in report.Notifications) WriteNotification(n);
    }

    private static int LevelSlot(RuleLevel level) => level switch { RuleLevel.Error => 0, RuleLevel.Warning => 1, _ => 2 };

    /// <summary>One result standing for the results of a rule in an image past the per-rule cap; its fingerprint is stable.</summary>
    private Finding MoreResults(Finding sample, ArtifactReport artifact, int more)
    {
        var fingerprint = FindingFingerprint.Compute(sample.Rule.Id, artifact.Uri, artifact.ModuleName, sample.Suppression is null ? "(more results)" : "(more suppressed results)");
        return sample with
        {
            Message = $"{more} more result(s) of {sample.Rule.Id} {sample.Rule.Name} in {artifact.DisplayName} were left out of this log " +
                      $"(at most {_maxPerRulePerImage} per rule per image); the text and JSON Lines reports list them all.",
            Anchor = new Anchor(AnchorKind.Image, "(more results)", new Dictionary<string, string>()),
            Fingerprint = fingerprint,
            BaselineState = _context?.Baseline is { } b ? (b.Contains(fingerprint) ? "unchanged" : "new") : null,
        };
    }

    private void WriteResult(Finding finding, ArtifactReport artifact, int artifactIndex, int spool)
    {

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
            ["anchorKind"] = finding.Anchor.Kind.Name(),
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
                        // No region: binaries have no lines, and a region makes GitHub's upload read every binary
                        // and dump as text to fingerprint it (minutes for a corpus). partialFingerprints says it all.
                        Address = SiteAddress(finding),
                    },
                    LogicalLocations = logical,
                },
            ],
            PartialFingerprints = new Dictionary<string, string> { ["primaryLocationLineHash"] = finding.Fingerprint },
            BaselineState = finding.BaselineState,
            Suppressions = finding.Suppression is { } sup ? [Suppression(sup)] : null,
            Properties = properties,
        };
        _results[spool].Write(result, SarifJsonContext.Default.SarifResult);
    }

    /// <summary>The config entry that accepted the result: where it is, why, and until when.</summary>
    private static SarifSuppression Suppression(Suppression s) => new()
    {
        Kind = "external",
        Status = "accepted",
        Justification = s.Justification,
        Location = new SarifLocation
        {
            PhysicalLocation = new SarifPhysicalLocation { ArtifactLocation = Location(s.ConfigUri, null), Region = new SarifRegion(s.Line) },
        },
        Properties = s.Expires is { } until
            ? new SortedDictionary<string, object>(StringComparer.Ordinal) { ["expires"] = until.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture) }
            : null,
    };

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
        if (_includeAbsent && _context.Baseline is { } baseline) SpoolAbsentResults(baseline);

        // Most severe first; within a level, one result per artifact before the rest, so no image with an error
        // can be hidden by another image's flood of results.
        var budget = _maxResults;
        var dropped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var droppedByLevel = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var spool in _results)
            budget -= spool.CopyTo(_json, budget, (rule, level) =>
            {
                dropped[rule] = dropped.GetValueOrDefault(rule) + 1;
                droppedByLevel[level] = droppedByLevel.GetValueOrDefault(level) + 1;
            });
        _json.WriteEndArray(); // results

        if (_suppressedLeftOut > 0)
            WriteNotification(new Notification(NotificationCodes.SuppressedResultsLeftOut, NotificationLevel.Note,
                $"{_suppressedLeftOut} result(s) suppressed by the config file were left out of this log: GitHub code scanning does not read " +
                "SARIF suppressions and would show them as open alerts. --include-suppressed keeps them, with their suppressions."));
        if (_cappedResults > 0)
            WriteNotification(new Notification(NotificationCodes.ResultsTruncated, NotificationLevel.Note,
                $"{_cappedResults} result(s) of {string.Join(", ", _cappedRules)} in {_cappedImages} image(s) were summarised: at most " +
                $"{_maxPerRulePerImage} results per rule per image are listed, then one result says how many more."));
        if (dropped.Count > 0)
        {
            var total = dropped.Values.Sum();
            var levels = string.Join(", ", new[] { "error", "warning", "note" }.Where(droppedByLevel.ContainsKey).Select(l => $"{droppedByLevel[l]} {l}"));
            var rules = string.Join(", ", dropped.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal).Take(10).Select(kv => $"{kv.Key} ({kv.Value})"));
            WriteNotification(new Notification(NotificationCodes.ResultsTruncated, NotificationLevel.Warning,
                $"{total} result(s) were left out ({levels}; by rule: {rules}{(dropped.Count > 10 ? ", …" : "")}): GitHub code scanning accepts at most " +
                $"{_maxResults} results per run. The most severe were kept first, and every image with an error-level result keeps at least one. " +
                "Narrow the scan (--only, --include) or split it with --category."));
        }

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
    private void SpoolAbsentResults(Baseline baseline)
    {
        using var doc = Baseline.Parse(baseline.Path);
        foreach (var run in doc.RootElement.GetProperty("runs").EnumerateArray())
        {
            if (!run.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array) continue;
            foreach (var old in results.EnumerateArray())
            {
                if (Baseline.Fingerprint(old) is not { } fp || !_seenFingerprints.Add(fp)) continue;
                var node = System.Text.Json.Nodes.JsonNode.Parse(old.GetRawText())!.AsObject();
                node["baselineState"] = "absent";
                var ruleId = node["ruleId"]?.GetValue<string>();
                if (ruleId is not null && _ruleIndex.TryGetValue(ruleId, out var ri)) node["ruleIndex"] = ri; else node.Remove("ruleIndex");
                if (node["locations"] is System.Text.Json.Nodes.JsonArray locations)
                    foreach (var loc in locations)
                        (loc?["physicalLocation"]?["artifactLocation"] as System.Text.Json.Nodes.JsonObject)?.Remove("index");
                _results[^1].WriteRaw(node.ToJsonString());
            }
        }
    }

    /// <summary>Call and instruction findings know their instruction's RVA; the region stays the display anchor.</summary>
    private static SarifAddress? SiteAddress(Finding finding) =>
        finding.Anchor is { Kind: AnchorKind.Call or AnchorKind.Instruction, Rva: uint rva }
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

    private static string LogicalKind(AnchorKind anchorKind) => anchorKind switch
    {
        AnchorKind.Import or AnchorKind.Export or AnchorKind.Call => "function",
        AnchorKind.Section => "member",
        _ => "module",
    };

    public void Dispose()
    {
        _json.Dispose();
        _artifacts.Dispose();
        _notifications.Dispose();
        foreach (var spool in _results) spool.Dispose();
    }

    /// <summary>
    /// A temporary file of JSON values, one per line, copied into the log at the end. Nothing is kept in memory per
    /// value: what the cap leaves out is named from its own line (<see cref="Tags"/>), so memory stays flat however
    /// many results a scan has.
    /// </summary>
    private sealed class Spool : IDisposable
    {
        private FileStream? _stream;
        private Utf8JsonWriter? _writer;

        private void Open()
        {
            if (_stream is not null) return;
            _stream = TempFiles.CreateScratch();
            _writer = new Utf8JsonWriter(_stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        }

        public void Write<T>(T value, JsonTypeInfo<T> type)
        {
            Open();
            JsonSerializer.Serialize(_writer!, value, type);
            _writer!.Flush();
            _writer.Reset();
            _stream!.WriteByte((byte)'\n');
        }

        /// <summary>A value already serialised on one line (JSON escapes line breaks inside strings).</summary>
        public void WriteRaw(string json)
        {
            Open();
            _writer!.Flush();
            _stream!.Write(Encoding.UTF8.GetBytes(json));
            _stream.WriteByte((byte)'\n');
        }

        public void CopyTo(Utf8JsonWriter json) => CopyTo(json, int.MaxValue, null);

        /// <summary>Copies at most <paramref name="limit"/> values, reports each value left out; returns how many were copied.</summary>
        public int CopyTo(Utf8JsonWriter json, int limit, Action<string, string>? leftOut)
        {
            if (_stream is null) return 0;
            _writer!.Flush();
            _stream.Position = 0;
            using var reader = new StreamReader(_stream, Encoding.UTF8, false, 1 << 16, leaveOpen: true);
            var copied = 0;
            while (reader.ReadLine() is { } line)
            {
                if (line.Length == 0) continue;
                if (copied < limit)
                {
                    json.WriteRawValue(line, skipInputValidation: true);
                    copied++;
                    if (json.BytesPending > 1 << 16) json.Flush();
                }
                else if (leftOut is not null)
                {
                    var (rule, level) = Tags(line);
                    leftOut(rule, level);
                }
            }
            return copied;
        }

        /// <summary>
        /// A spooled result's top-level <c>ruleId</c> and <c>level</c>; as for a result read from a baseline, a missing
        /// rule id is "(unknown)" and a missing level "warning" (SARIF's default).
        /// </summary>
        internal static (string Rule, string Level) Tags(string line)
        {
            string? rule = null, level = null;
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(line));
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1) continue;
                var isRule = reader.ValueTextEquals("ruleId"u8);
                var isLevel = !isRule && reader.ValueTextEquals("level"u8);
                if (!reader.Read()) break;
                if (reader.TokenType == JsonTokenType.String)
                {
                    if (isRule) rule ??= reader.GetString();
                    else if (isLevel) level ??= reader.GetString();
                }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    reader.Skip();
                }
                if (rule is not null && level is not null) break;
            }
            return (rule ?? "(unknown)", level ?? "warning");
        }

        public void Dispose()
        {
            _writer?.Dispose();
            _stream?.Dispose();
        }
    }
}
