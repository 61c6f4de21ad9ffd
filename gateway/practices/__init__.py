"""The practice register (praksisinformasjon): who the senders are, and what they have agreed.

Per practice (HER id, organisation number) and period: its practice type and specialties, its
municipality, its direct-settlement agreement (avtale om direkte oppgjør), a physiotherapist's
or specialist's operating agreement (driftsavtale), the payout account, and for a public
laboratory the health authority that owns it. The rules read it through the claim context, the
payout names and pays the payee as it says, the statistics take their dimensions from it.

- ``model``: ``Practice`` (one row), ``PracticeRegister`` (one version, indexed by HER id);
- ``reading``: CSV and JSON files, checked whole (``PracticeFileError``);
- ``importing``, ``imports``, ``loading``, ``live``: imports kept in the store (all or nothing,
  versioned like the tariffs), the version in force, reloaded without a restart;
- ``legacy``: the config's old ``[practitioners]`` table and the payout receivers file, and how
  to turn them into a register file;
- ``cli``: ``gateway practices import|show|convert``.

For SQL (statistics): the store keeps each import's rows in ``practice_periods``; the view
``practices_in_force`` holds those of the import in force, one row per practice and period
(``her_id``, ``practice_type``, ``practitioner_type``, ``fagomrade``, ``municipality``,
``valid_from``/``valid_to``, ``operating_agreement_from``/``_to`` …). Join a bill on
``her_id = bills.sender_her`` and its treatment day between ``valid_from`` and ``valid_to``.
"""
