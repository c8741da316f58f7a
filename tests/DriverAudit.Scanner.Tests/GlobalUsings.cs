global using DriverAudit.TestSupport;
global using DriverAudit.TestSupport.Dumps;
