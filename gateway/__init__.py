"""gateway: receives KUHR-style reimbursement claims over ebXML and answers with signed AppRecs."""

__version__ = "0.1.0"
