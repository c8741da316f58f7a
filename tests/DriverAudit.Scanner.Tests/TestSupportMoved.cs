// The test helpers moved to tests/DriverAudit.TestSupport (namespaces DriverAudit.TestSupport and .Dumps, imported for the
// whole project in GlobalUsings.cs). This keeps the old namespaces declared, so a test written against them still builds
// while branches catch up; delete it once `grep -rn "Scanner.Tests.TestSupport" tests` finds only this file.
namespace DriverAudit.Scanner.Tests.TestSupport.Dumps;
