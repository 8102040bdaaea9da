BEGIN TRANSACTION;
CREATE TABLE proposals (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    rationale TEXT NOT NULL,
    preview TEXT,
    action_info TEXT,
    max_window INTEGER NOT NULL,
    proposed_by TEXT,
    trace TEXT,
    approver TEXT,
    nonce TEXT UNIQUE,
    not_before INTEGER,
    not_after INTEGER,
    signature TEXT,
    reason TEXT,
    executor TEXT,
    sent_at REAL,
    result TEXT,
    note TEXT
);
INSERT INTO "proposals" VALUES('pf001ff8b',1.79645469751234197613e+09,1.79645469751234197613e+09,'pending','target-1','touch_file','{"file":"/srv/a"}','the file is missing, see the log','{"available": false, "why": "no read-only equivalent"}','{"description": "Desired state: the file exists.", "runs_as": "root"}',3600,'model:local','t-schema1',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "proposals" VALUES('p1dcd401e',1.79645469751285314554e+09,1.79645469751848888394e+09,'approved','target-1','touch_file','{"file":"/srv/b"}','the file is missing, see the log','{"available": false, "why": "no read-only equivalent"}','{"description": "Desired state: the file exists.", "runs_as": "root"}',3600,'model:local','t-schema1','alice','db9a780f0b8761f38058513daac3c43f',1796454697,1796455297,'-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgyiCQdceJS7ZBjuOdzDUj73Qe0P
CkNJ4wBWu78ssTlSIAAAAYbWNwLWxpbnV4LWluZnJhLWFwcHJvdmFsAAAAAAAAAAZzaGE1
MTIAAABTAAAAC3NzaC1lZDI1NTE5AAAAQH9gvA4cWV/AQRda+pWZm3ULIIbSXC5oPZSIqT
ovyALoJ+93wgXAIpxUh2uvHm1gCuCm0cvsXZusewrHbY7tnww=
-----END SSH SIGNATURE-----
',NULL,NULL,NULL,NULL,'approved for 600 s');
INSERT INTO "proposals" VALUES('p0fdf6dd4',1.79645469751316356663e+09,1.79645469752423453326e+09,'succeeded','target-1','touch_file','{"file":"/srv/c"}','the file is missing, see the log','{"available": false, "why": "no read-only equivalent"}','{"description": "Desired state: the file exists.", "runs_as": "root"}',3600,'model:local','t-schema1','alice','c0e591c4740d7b89cae12dd47af9e542',1796454697,1796455297,'-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgyiCQdceJS7ZBjuOdzDUj73Qe0P
CkNJ4wBWu78ssTlSIAAAAYbWNwLWxpbnV4LWluZnJhLWFwcHJvdmFsAAAAAAAAAAZzaGE1
MTIAAABTAAAAC3NzaC1lZDI1NTE5AAAAQNcyhKq/ct0fEwqILsNlqvRZIEt+EO1OWD7HTG
41b7wJqRrzwDCDOFjTzhKSTpsrXoI/wl3Uoq55IMEznfqk7Qk=
-----END SSH SIGNATURE-----
',NULL,NULL,1.79645469752381944658e+09,'{"outcome": "changed"}','ran');
INSERT INTO "proposals" VALUES('pe441fb71',1.79645469751346158982e+09,1.79645469752461314199e+09,'rejected','target-1','touch_file','{"file":"/srv/d"}','the file is missing, see the log','{"available": false, "why": "no read-only equivalent"}','{"description": "Desired state: the file exists.", "runs_as": "root"}',3600,'model:local','t-schema1',NULL,NULL,NULL,NULL,NULL,'not now',NULL,NULL,NULL,'rejected by the operator');
CREATE TABLE transitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal TEXT NOT NULL REFERENCES proposals (id),
    at REAL NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    trace TEXT,
    note TEXT
);
INSERT INTO "transitions" VALUES(1,'pf001ff8b',1.79645469751234197613e+09,NULL,'pending','model:local','t-schema1',NULL);
INSERT INTO "transitions" VALUES(2,'p1dcd401e',1.79645469751285314554e+09,NULL,'pending','model:local','t-schema1',NULL);
INSERT INTO "transitions" VALUES(3,'p0fdf6dd4',1.79645469751316356663e+09,NULL,'pending','model:local','t-schema1',NULL);
INSERT INTO "transitions" VALUES(4,'pe441fb71',1.79645469751346158982e+09,NULL,'pending','model:local','t-schema1',NULL);
INSERT INTO "transitions" VALUES(5,'p1dcd401e',1.79645469751848888394e+09,'pending','approved','operator:alice',NULL,'approved for 600 s');
INSERT INTO "transitions" VALUES(6,'p0fdf6dd4',1.79645469752338051792e+09,'pending','approved','operator:alice',NULL,'approved for 600 s');
INSERT INTO "transitions" VALUES(7,'p0fdf6dd4',1.79645469752382111548e+09,'approved','executing','model:local',NULL,NULL);
INSERT INTO "transitions" VALUES(8,'p0fdf6dd4',1.79645469752423453326e+09,'executing','succeeded','model:local',NULL,'ran');
INSERT INTO "transitions" VALUES(9,'pe441fb71',1.79645469752461314199e+09,'pending','rejected','operator:alice',NULL,'rejected by the operator');
CREATE INDEX proposals_state ON proposals (state);
CREATE INDEX transitions_proposal ON transitions (proposal);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('transitions',9);
COMMIT;
